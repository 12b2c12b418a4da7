//! A Rego test runner with `opa test` semantics: every rule named `test_*`
//! (not a function) in any module is evaluated; it passes when it is
//! defined and true, fails when it is false or undefined, and errors when
//! evaluation fails. `with` overrides work as in OPA. Rules named
//! `todo_test_*` are skipped. Rule coverage of the policy modules (test
//! modules excluded) comes with the results.

use std::collections::BTreeMap;

use regorus::unstable::{Rule, RuleHead};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bundle::{build_engine, is_test_module};
use super::{PolicyError, engine_error};

/// Outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// Defined and true.
    Pass,
    /// False or undefined.
    Fail,
    /// Evaluation failed.
    Error,
    /// A `todo_test_*` rule.
    Skip,
}

/// One test rule's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegoTestResult {
    /// Full rule path, e.g. `data.smm.consent_test.test_missing_voice`.
    pub name: String,
    /// Module it is defined in.
    pub module: String,
    /// Line of its first definition.
    pub line: u32,
    /// What happened.
    pub outcome: TestOutcome,
    /// The engine's message for an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Line coverage of one policy module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverageFile {
    /// Module path.
    pub path: String,
    /// Lines evaluated by the tests.
    pub covered: Vec<u32>,
    /// Lines of rules never evaluated.
    pub not_covered: Vec<u32>,
}

/// Every test's result and the coverage they reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    /// Results, in module order then line order.
    pub results: Vec<RegoTestResult>,
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed or errored.
    pub failed: usize,
    /// Tests skipped (`todo_test_*`).
    pub skipped: usize,
    /// Coverage of each policy module (tests excluded), by path.
    pub coverage: Vec<CoverageFile>,
    /// Covered lines / coverable lines of the policy modules, in percent.
    pub coverage_percent: f64,
}

impl TestReport {
    /// At least one test ran and none failed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

pub(crate) fn run(
    modules: &BTreeMap<String, String>,
    data: &Value,
) -> Result<TestReport, PolicyError> {
    let mut engine = build_engine(modules.iter(), data)?;
    engine.set_enable_coverage(true);
    // (path, module, line, is todo)
    let mut tests: Vec<(String, String, u32, bool)> = Vec::new();
    for m in engine.get_modules().iter() {
        let package = regorus::utils::get_path_string(&m.package.refr, Some("data"))
            .map_err(|e| engine_failure(&e))?;
        for rule in &m.policy {
            let Rule::Spec { head, span, .. } = rule.as_ref() else {
                continue;
            };
            let refr = match head {
                RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => refr,
                RuleHead::Func { .. } => continue,
            };
            let name =
                regorus::utils::get_path_string(refr, None).map_err(|e| engine_failure(&e))?;
            let todo = name.starts_with("todo_test_");
            if !name.starts_with("test_") && !todo {
                continue;
            }
            let path = format!("{package}.{name}");
            if tests.iter().any(|t| t.0 == path) {
                continue; // a test may have several definitions (bodies)
            }
            tests.push((path, span.source.get_path().clone(), span.line, todo));
        }
    }
    let mut results = Vec::with_capacity(tests.len());
    for (name, module, line, todo) in tests {
        let (outcome, message) = if todo {
            (TestOutcome::Skip, None)
        } else {
            match engine.eval_rule(name.clone()) {
                Ok(regorus::Value::Bool(true)) => (TestOutcome::Pass, None),
                Ok(_) => (TestOutcome::Fail, None),
                Err(e) => {
                    let (_, _, msg) = engine_error(&module, &e);
                    (TestOutcome::Error, Some(msg))
                }
            }
        };
        results.push(RegoTestResult {
            name,
            module,
            line,
            outcome,
            message,
        });
    }
    let report = engine
        .get_coverage_report()
        .map_err(|e| engine_failure(&e))?;
    let mut coverage: Vec<CoverageFile> = report
        .files
        .into_iter()
        .filter(|f| !is_test_module(&f.path))
        .map(|f| CoverageFile {
            path: f.path,
            covered: f.covered.into_iter().collect(),
            not_covered: f.not_covered.into_iter().collect(),
        })
        .collect();
    coverage.sort_by(|a, b| a.path.cmp(&b.path));
    let (covered, all) = coverage.iter().fold((0usize, 0usize), |(c, a), f| {
        (
            c + f.covered.len(),
            a + f.covered.len() + f.not_covered.len(),
        )
    });
    let count = |o: TestOutcome| results.iter().filter(|r| r.outcome == o).count();
    Ok(TestReport {
        passed: count(TestOutcome::Pass),
        failed: count(TestOutcome::Fail) + count(TestOutcome::Error),
        skipped: count(TestOutcome::Skip),
        results,
        coverage,
        coverage_percent: if all == 0 {
            100.0
        } else {
            100.0 * covered as f64 / all as f64
        },
    })
}

fn engine_failure(e: &dyn std::fmt::Display) -> PolicyError {
    let (module, line, message) = engine_error("", e);
    PolicyError::Rule {
        module,
        line,
        message,
    }
}
