//! Failures: one line for people, one JSON object for machines, and an
//! exit code per category.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;
use smm_core::error::{ErrorCategory, ErrorKind};
use smm_core::flow::FlowError;

/// A failure of a command.
#[derive(Debug)]
pub struct Failure {
    /// The step of `smm run` that failed.
    pub step: Option<&'static str>,
    /// The library's error kind (none for the CLI's own checks).
    pub kind: Option<ErrorKind>,
    /// The category (the exit code).
    pub category: ErrorCategory,
    /// What was wrong.
    pub message: String,
    /// Where, in a document.
    pub pointer: Option<String>,
    /// The file it was about.
    pub file: Option<String>,
    /// How to fix it.
    pub hint: String,
}

/// The exit code of a category.
pub fn exit_code(category: ErrorCategory) -> u8 {
    match category {
        ErrorCategory::Internal => 1,
        ErrorCategory::Input => 3,
        ErrorCategory::Integrity => 4,
        ErrorCategory::Conflict => 5,
        ErrorCategory::Storage => 6,
        ErrorCategory::Signer => 7,
        ErrorCategory::Denied => 8,
        ErrorCategory::Quota => 9,
        ErrorCategory::Unauthorized => 10,
        ErrorCategory::Interrupted => 130,
    }
}

/// The library's hint for the kind (or, for the CLI's own failures, the
/// category): one table for the CLI and the C ABI.
fn hint(kind: Option<ErrorKind>, category: ErrorCategory) -> &'static str {
    kind.map_or_else(|| category.hint(), ErrorKind::hint)
}

impl Failure {
    /// A failure of the CLI's own (not from the library).
    pub fn new(category: ErrorCategory, message: impl Into<String>) -> Failure {
        Failure {
            step: None,
            kind: None,
            category,
            message: message.into(),
            pointer: None,
            file: None,
            hint: hint(None, category).to_string(),
        }
    }

    /// Bad input.
    pub fn input(message: impl Into<String>) -> Failure {
        Failure::new(ErrorCategory::Input, message)
    }

    /// A file that cannot be read (input) or written (storage).
    pub fn io(what: &str, path: &Path, e: &std::io::Error) -> Failure {
        let category = if what == "read" && e.kind() == std::io::ErrorKind::NotFound {
            ErrorCategory::Input
        } else {
            ErrorCategory::Storage
        };
        let mut f = Failure::new(category, format!("cannot {what} it: {e}"));
        f.file = Some(path.display().to_string());
        // What fixes an I/O failure is about the file, not a field.
        f.hint = match e.kind() {
            std::io::ErrorKind::NotFound if what == "read" => {
                "check the path: no file is there".to_string()
            }
            std::io::ErrorKind::NotFound => {
                "create the directory it goes in, or choose another path".to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "give this user access to the file, or choose another path".to_string()
            }
            std::io::ErrorKind::AlreadyExists => {
                "choose a path that does not exist yet (nothing is overwritten)".to_string()
            }
            _ => f.hint,
        };
        f
    }

    /// About this file.
    pub fn in_file(mut self, path: &Path) -> Failure {
        if self.file.is_none() {
            self.file = Some(path.display().to_string());
        }
        self
    }

    /// With this hint instead of the category's.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = hint.into();
        self
    }

    /// Report it (stderr, and stdout as JSON with `--json`) and give the
    /// exit code.
    pub fn report(self, json: bool) -> ExitCode {
        let code = self.code();
        if json {
            let doc = json!({"error": {
                "step": self.step,
                "kind": self.kind.map(ErrorKind::name),
                "category": self.category.as_str(),
                "message": self.message,
                "pointer": self.pointer,
                "file": self.file,
                "hint": self.hint,
                "exitCode": code,
            }});
            println!("{doc}");
        }
        eprintln!("{}", self.line());
        ExitCode::from(code)
    }

    /// The exit code: the category's, 124 for a time limit.
    pub fn code(&self) -> u8 {
        if self.kind == Some(ErrorKind::Timeout) {
            124
        } else {
            exit_code(self.category)
        }
    }

    /// The one line: `smm: [STEP step failed: ][FILE: ][at POINTER: ]MESSAGE (fix: HINT)`.
    pub fn line(&self) -> String {
        let mut s = String::from("smm: ");
        if let Some(step) = self.step {
            s.push_str(step);
            s.push_str(" step failed: ");
        }
        if let Some(f) = &self.file {
            s.push_str(f);
            s.push_str(": ");
        }
        if let Some(p) = self
            .pointer
            .as_deref()
            .filter(|p| !self.message.contains(*p))
        {
            s.push_str("at ");
            s.push_str(if p.is_empty() { "/" } else { p });
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s.push_str(" (fix: ");
        s.push_str(&self.hint);
        s.push(')');
        s.replace(['\n', '\r'], "; ")
    }
}

impl From<smm_core::Error> for Failure {
    fn from(e: smm_core::Error) -> Failure {
        let kind = e.kind();
        let category = kind.category();
        Failure {
            step: None,
            kind: Some(kind),
            category,
            message: e.to_string(),
            pointer: e.pointer().map(str::to_string),
            file: None,
            hint: hint(Some(kind), category).to_string(),
        }
    }
}

impl From<FlowError> for Failure {
    fn from(e: FlowError) -> Failure {
        let mut f = Failure::from(*e.error);
        f.step = Some(e.step.as_str());
        f
    }
}

macro_rules! from_domain {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                Failure::from(smm_core::Error::from(e))
            }
        }
    )*};
}

from_domain!(
    smm_core::sim::SimulationError,
    smm_core::contract::ContractError,
    smm_core::audit::AuditError,
    smm_core::policy::PolicyError,
    smm_core::usage::UsageError
);
