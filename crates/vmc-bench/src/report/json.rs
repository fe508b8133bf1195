//! `report.json` and its JSON Schema, `report.schema.json`.

use super::{write_file, BenchReport};
use crate::BenchError;
use std::path::{Path, PathBuf};

/// The report's file name.
pub const REPORT_FILE: &str = "report.json";
/// The schema's file name.
pub const SCHEMA_FILE: &str = "report.schema.json";
/// The JSON Schema (draft 2020-12) every report.json conforms to.
pub const SCHEMA: &str = include_str!("../../report.schema.json");

/// Writes the report as pretty-printed JSON.
pub fn write_report(report: &BenchReport, path: &Path) -> Result<PathBuf, BenchError> {
    let mut json = serde_json::to_vec_pretty(report)?;
    json.push(b'\n');
    write_file(path, &json)
}

/// Writes the schema next to the report, so the directory documents itself.
pub fn write_schema(path: &Path) -> Result<PathBuf, BenchError> {
    write_file(path, SCHEMA.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    fn validator() -> jsonschema::Validator {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        jsonschema::draft202012::new(&schema).unwrap()
    }

    #[test]
    fn written_report_conforms_to_the_schema_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let report = sample::report();
        let path = write_report(&report, &dir.path().join(REPORT_FILE)).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator()
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let back: BenchReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn a_combined_report_conforms_too() {
        let mut report = sample::report();
        let vm = report.modes.remove(0);
        let mut sandbox = sample::report();
        sandbox.modes = vec![vm];
        report.add_modes_from(sandbox).unwrap();
        let value = serde_json::to_value(&report).unwrap();
        assert!(value["modes"][0]["ran_on"].is_object());
        assert!(validator().is_valid(&value));
    }

    #[test]
    fn schema_rejects_what_it_should() {
        let mut value = serde_json::to_value(sample::report()).unwrap();
        value["modes"][0]["runs"][0]["milestones"][0]["milestone"] = "boot".into();
        assert!(!validator().is_valid(&value));
        let mut value = serde_json::to_value(sample::report()).unwrap();
        value["host"].as_object_mut().unwrap().remove("kvm");
        assert!(!validator().is_valid(&value));
    }

    #[test]
    fn schema_file_is_written_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_schema(&dir.path().join(SCHEMA_FILE)).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), SCHEMA);
    }
}
