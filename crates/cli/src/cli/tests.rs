//! The command line's own shape: every subcommand parses as documented.

use super::*;
use clap::CommandFactory;

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn a_review_decision_needs_exactly_one_of_approve_and_reject() {
    assert!(Cli::try_parse_from(["steward", "reviews", "decide", "r1"]).is_err());
    assert!(Cli::try_parse_from([
        "steward",
        "reviews",
        "decide",
        "r1",
        "--approve",
        "--reject"
    ])
    .is_err());
    assert!(Cli::try_parse_from(["steward", "reviews", "decide", "r1", "--approve"]).is_ok());
}

#[test]
fn connection_flags_mean_the_same_before_and_after_the_subcommand() {
    let conn = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
        Command::Models(ModelsCmd::List(a)) => a.conn,
        other => panic!("parsed as {other:?}"),
    };
    let url = "http://127.0.0.1:9";
    let before = conn(&[
        "steward",
        "--aws",
        "--region",
        "eu-west-1",
        "--server",
        url,
        "models",
        "list",
    ]);
    let after = conn(&[
        "steward",
        "models",
        "list",
        "--aws",
        "--region",
        "eu-west-1",
        "--server",
        url,
    ]);
    for c in [before, after] {
        assert!(c.aws);
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.server, url);
    }
    let plain = conn(&["steward", "models", "list"]);
    assert!(!plain.aws || std::env::var_os("STEWARD_AWS").is_some());
}

#[test]
fn enumerated_values_are_checked_against_the_core_names() {
    assert!(Cli::try_parse_from(["steward", "gate", "m", "1", "--environment", "prod"]).is_err());
    let cli = Cli::try_parse_from([
        "steward",
        "principals",
        "set",
        "bob",
        "--role",
        "developer,release-manager",
    ])
    .unwrap();
    let Command::Principals(PrincipalsCmd::Set(a)) = cli.command else {
        panic!()
    };
    assert_eq!(a.roles, vec![Role::Developer, Role::ReleaseManager]);
}
