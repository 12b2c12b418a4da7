//! Where a policy decision's time goes, rule by rule:
//! `policy-rules [RULE...]` compiles each rule of the default bundle
//! (`smm-core/policies/default`) as the regorus VM's entry point on its own,
//! runs it 3,000 times on `examples/policy-input.icblabs.json`, and prints
//! the median time and the start of its value. With no arguments: the
//! decision, the four unions it is made of, and every module's `deny`,
//! `warnings`, `reasons` and `require_human_approval`. A rule run alone
//! includes the helpers it reads (`data.smm.lib`), so the figures overlap;
//! they say which modules cost most, not a sum. Figures in BENCHMARKS.md.

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;

const MODULES: [&str; 9] = [
    "consent",
    "budget",
    "connector",
    "security",
    "content",
    "emergency",
    "quota",
    "lifecycle",
    "hallucination",
];
const SETS: [&str; 4] = ["deny", "warnings", "reasons", "require_human_approval"];

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bundle = root.join("smm-core/policies/default");
    let mut engine = regorus::Engine::new();
    for e in std::fs::read_dir(bundle.join("smm"))? {
        let p = e?.path();
        let name = p.to_string_lossy().to_string();
        if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            engine.add_policy(name, std::fs::read_to_string(&p)?)?;
        }
    }
    let data = std::fs::read_to_string(bundle.join("data.json"))?;
    engine.add_data_json(&data)?;
    let input = std::fs::read_to_string(root.join("examples/policy-input.icblabs.json"))?;
    let input = regorus::Value::from_json_str(&input)?;
    let mut rules: Vec<String> = std::env::args().skip(1).collect();
    if rules.is_empty() {
        rules = [
            "decision",
            "deny_codes",
            "warning_codes",
            "reason_codes",
            "approval_codes",
        ]
        .iter()
        .map(|r| format!("data.smm.{r}"))
        .collect();
        for m in MODULES {
            let file = bundle.join(format!("smm/{m}.rego"));
            let text = std::fs::read_to_string(file)?;
            for s in SETS {
                let defined = text.lines().any(|l| {
                    l.starts_with(&format!("{s} contains")) || l.starts_with(&format!("{s} :="))
                });
                if defined {
                    rules.push(format!("data.smm.{m}.{s}"));
                }
            }
        }
    }
    for rule in rules {
        let mut e = engine.clone();
        let policy = e.compile_with_entrypoint(&regorus::Rc::from(rule.as_str()))?;
        let program = Compiler::compile_from_policy(&policy, &[rule.as_str()])?;
        let mut vm = RegoVM::new();
        vm.load_program(program);
        vm.set_data(regorus::Value::from_json_str(&data)?)?;
        let mut times = Vec::with_capacity(3000);
        let mut out = regorus::Value::Null;
        for _ in 0..3000 {
            vm.set_input(input.clone());
            let t = Instant::now();
            out = vm.execute_entry_point_by_name(&rule)?;
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        let shown: String = out
            .to_json_str()?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let shown: String = shown.chars().take(70).collect();
        println!("{median:>8.1} µs  {rule:<48} {shown}");
    }
    Ok(())
}
