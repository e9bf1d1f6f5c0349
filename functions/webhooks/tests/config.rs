//! The function refuses to start without its configuration: the process exits at cold start,
//! before it asks the Lambda Runtime API for work, naming every missing setting at once.

use std::process::Command;

#[test]
fn missing_settings_stop_the_function_at_cold_start_and_are_all_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .env_clear()
        .output()
        .expect("the function binary runs");
    assert!(!out.status.success(), "started without configuration");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Steward.Config"), "{stderr}");
    assert!(stderr.contains("STEWARD_TABLE is not set"), "{stderr}");
}
