//! Evaluating a bundle: decisions on the VM (one per thread per bundle)
//! or the interpreter, queries, the Rego tests, and the engine's bounds.

use std::fmt;
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use serde::Deserialize;
use serde_json::Value;

use super::{
    DECISION_INSTRUCTIONS_BASE, DECISION_INSTRUCTIONS_PER_STEP, DECISION_RULE, EvalMode,
    MAX_EVAL_SECONDS, PolicyBundle, VMS, VMS_PER_THREAD,
};
use crate::policy::decision::Decision;
use crate::policy::input::PolicyInput;
use crate::policy::native;
use crate::policy::testing::{self, TestReport};
use crate::policy::{PolicyError, engine_error};

impl PolicyBundle {
    /// Validate `input` and evaluate [`DECISION_RULE`] on the VM.
    pub fn evaluate(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        self.evaluate_with(input, EvalMode::Vm)
    }

    /// [`PolicyBundle::evaluate`] on the chosen evaluator.
    pub fn evaluate_with(
        &self,
        input: &PolicyInput,
        mode: EvalMode,
    ) -> Result<Decision, PolicyError> {
        if !self.vm {
            return Err(PolicyError::NoDecision {
                rule: DECISION_RULE.into(),
                message: "the bundle does not define it".into(),
            });
        }
        let result = match mode {
            EvalMode::Vm => self.run_vm(input.engine_value().clone())?,
            EvalMode::Interpreter => {
                self.run_interpreter(DECISION_RULE, input.engine_value().clone())?
            }
            EvalMode::Native => return self.run_native(input),
        };
        Decision::from_rule_value(to_json(DECISION_RULE, result)?, &self.checksum, input)
    }

    /// The decision on [`EvalMode::Native`] (see `policy/native.rs`).
    fn run_native(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        let Some(cfg) = &self.native else {
            return Err(PolicyError::NoDecision {
                rule: DECISION_RULE.into(),
                message: "the native evaluator decides only for the default bundle's policy \
                          modules with a config of the default's shape; this bundle decides on \
                          the VM"
                    .into(),
            });
        };
        match native::decide(cfg, input.document()) {
            Ok(codes) => Ok(Decision::from_native(codes, &self.checksum, input)),
            Err(native::Stop::Error { module, message }) => Err(PolicyError::Rule {
                module: module.into(),
                line: None,
                message: format!("{message} (evaluating {DECISION_RULE} natively)"),
            }),
            // An integer beyond what the native form models: the VM's
            // exact big integers decide (and the decision says so).
            Err(native::Stop::Fallback) => self.evaluate_with(input, EvalMode::Vm),
        }
    }

    /// Evaluate any rule path (`data.pkg.rule`) on any JSON input (on the
    /// interpreter; the decision on the VM); `None` when the rule is
    /// undefined for it. Errors at evaluation (a builtin on a wrong type, a
    /// conflict) are errors.
    pub fn query(&self, rule_path: &str, input: &Value) -> Result<Option<Value>, PolicyError> {
        let value = regorus::Value::deserialize(input).map_err(|e| PolicyError::InvalidInput {
            pointer: String::new(),
            message: e.to_string(),
        })?;
        let result = if rule_path == DECISION_RULE && self.vm {
            self.run_vm(value)?
        } else {
            self.run_interpreter(rule_path, value)?
        };
        to_json(rule_path, result)
    }

    fn run_interpreter(
        &self,
        rule_path: &str,
        input: regorus::Value,
    ) -> Result<regorus::Value, PolicyError> {
        let mut engine = self.engine.clone();
        engine.set_input(input);
        engine
            .eval_rule(rule_path.to_string())
            .map_err(|e| eval_error(&e))
    }

    /// Run [`DECISION_RULE`] on this thread's VM for this bundle (made on
    /// first use, with its own program and data).
    fn run_vm(&self, input: regorus::Value) -> Result<regorus::Value, PolicyError> {
        VMS.with(|cell| {
            let mut vms = cell.try_borrow_mut().map_err(|_| PolicyError::NoDecision {
                rule: DECISION_RULE.into(),
                message: "re-entrant evaluation on one thread".into(),
            })?;
            let slot = match vms.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    let (program, data) =
                        compile_vm(&self.engine, &self.data)?.ok_or_else(|| {
                            PolicyError::NoDecision {
                                rule: DECISION_RULE.into(),
                                message: "the bundle does not define it".into(),
                            }
                        })?;
                    let mut vm = RegoVM::new();
                    vm.set_strict_builtin_errors(true);
                    vm.set_execution_timer_config(Some(eval_timer()));
                    vm.load_program(program);
                    vm.set_data(data).map_err(|e| eval_error(&e))?;
                    if vms.len() >= VMS_PER_THREAD {
                        vms.remove(0);
                    }
                    vms.push((self.id, vm));
                    vms.len() - 1
                }
            };
            let Some((_, vm)) = vms.get_mut(slot) else {
                return Err(PolicyError::NoDecision {
                    rule: DECISION_RULE.into(),
                    message: "internal: lost the thread's VM".into(),
                });
            };
            let limit = instruction_limit(&input);
            vm.set_max_instructions(limit);
            vm.set_input(input);
            let out = vm.execute_entry_point_by_name(DECISION_RULE);
            if out.is_err() {
                // Do not reuse a VM whose run failed half-way.
                vms.remove(slot);
            }
            out.map_err(|e| match eval_error(&e) {
                PolicyError::Rule {
                    line: None,
                    message,
                    ..
                } => {
                    let (module, line) = self.decision_site.clone().unzip();
                    PolicyError::Rule {
                        module: module.unwrap_or_default(),
                        line,
                        message: format!(
                            "{message} (evaluating {DECISION_RULE}; at most {limit} instructions, {MAX_EVAL_SECONDS} s)"
                        ),
                    }
                }
                other => other,
            })
        })
    }

    /// Run the bundle's Rego unit tests (`test_*` rules in any module, with
    /// OPA `opa test` semantics) with rule coverage of the policy modules.
    pub fn test(&self) -> Result<TestReport, PolicyError> {
        testing::run(&self.modules, &self.data)
    }
}

fn to_json(rule_path: &str, result: regorus::Value) -> Result<Option<Value>, PolicyError> {
    if result == regorus::Value::Undefined {
        return Ok(None);
    }
    serde_json::to_value(&result)
        .map(Some)
        .map_err(|e| PolicyError::NoDecision {
            rule: rule_path.into(),
            message: format!("the result is not JSON: {e}"),
        })
}

fn eval_error(e: &dyn fmt::Display) -> PolicyError {
    let (module, line, message) = engine_error("", e);
    PolicyError::Rule {
        module,
        line,
        message,
    }
}

/// The time bound of one evaluation ([`MAX_EVAL_SECONDS`]).
pub(crate) fn eval_timer() -> regorus::utils::limits::ExecutionTimerConfig {
    regorus::utils::limits::ExecutionTimerConfig {
        limit: std::time::Duration::from_secs(MAX_EVAL_SECONDS),
        check_interval: std::num::NonZeroU32::MIN.saturating_add(63),
    }
}

/// The VM instructions a decision on `input` may run.
fn instruction_limit(input: &regorus::Value) -> usize {
    let steps = match &input["workflow"] {
        regorus::Value::Array(a) => a.len(),
        _ => 0,
    };
    DECISION_INSTRUCTIONS_BASE.saturating_add(DECISION_INSTRUCTIONS_PER_STEP.saturating_mul(steps))
}

/// An engine holding `modules` and `data`, strict about builtin errors,
/// bounded in time. Each module's nesting is checked before it is parsed,
/// and the bundle's functions for recursion before anything runs.
pub(crate) fn build_engine<'a>(
    modules: impl Iterator<Item = (&'a String, &'a String)>,
    data: &Value,
) -> Result<regorus::Engine, PolicyError> {
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(true);
    engine.set_execution_timer_config(eval_timer());
    for (path, src) in modules {
        crate::policy::guard::check_nesting(path, src)?;
        engine.add_policy(path.clone(), src.clone()).map_err(|e| {
            let (module, line, message) = engine_error(path, &e);
            PolicyError::Compile {
                module,
                line,
                message,
            }
        })?;
    }
    crate::policy::guard::check_recursion(engine.get_modules())?;
    engine
        .add_data(regorus::Value::from(data.clone()))
        .map_err(|e| PolicyError::InvalidBundle {
            path: "data".into(),
            message: e.to_string(),
        })?;
    Ok(engine)
}

/// Compile [`DECISION_RULE`] for the VM when the bundle defines it.
pub(super) fn compile_vm(
    engine: &regorus::Engine,
    data: &Value,
) -> Result<Option<(Arc<Program>, regorus::Value)>, PolicyError> {
    let mut e = engine.clone();
    let Ok(policy) = e.compile_with_entrypoint(&regorus::Rc::from(DECISION_RULE)) else {
        return Ok(None);
    };
    if !policy.get_rules().contains_key(DECISION_RULE) {
        return Ok(None);
    }
    let program = Compiler::compile_from_policy(&policy, &[DECISION_RULE]).map_err(|e| {
        let (module, line, message) = engine_error("", &e);
        PolicyError::Compile {
            module,
            line,
            message,
        }
    })?;
    // A deep copy of the data for this program's user (see VMS).
    let data = regorus::Value::deserialize(data).map_err(|e| PolicyError::InvalidBundle {
        path: "data".into(),
        message: e.to_string(),
    })?;
    Ok(Some((program, data)))
}
