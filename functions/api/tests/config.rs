//! The function refuses to start without its configuration: the process exits at cold start,
//! before it asks the Lambda Runtime API for work, naming every missing setting at once.

use std::process::Command;

#[test]
fn missing_settings_stop_the_function_at_cold_start_and_are_all_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .output()
        .expect("the function binary runs");
    assert!(!out.status.success(), "started without configuration");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Steward.Config"), "{stderr}");
    assert!(stderr.contains("STEWARD_TABLE is not set"), "{stderr}");
}

#[test]
fn the_api_will_not_start_without_a_checkpoint_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .env("STEWARD_TABLE", "steward")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the function binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Steward.Config: STEWARD_SIGNING_KEY_ID is not set"),
        "{stderr}"
    );
}
