"""Drives Steward's MLflow Model Registry API with the real MLflow client (mlflow-skinny).

Run one phase at a time by the Rust tests that drive it (crates/api/tests/api/mlflow.rs over
the API on both backends, crates/cli/tests/mlflow_serve.rs against `steward serve`,
functions/api/tests/mlflow_sigv4.rs through API Gateway with SigV4 on DynamoDB Local); they
approve reviews through Steward's own API between phases. Every check is an assertion; a
failed one exits non-zero with what was expected and what came back.

Environment: MLFLOW_TRACKING_URI; who calls: TOKEN_DEV, TOKEN_REL (bearer tokens), or when
signing with SigV4 (MLFLOW_TRACKING_AUTH=steward-sigv4, or MLFLOW_TRACKING_AWS_SIGV4=true for
the client's own signer), AWS_KEYS (JSON: dev and rel, each {id, secret, token}) and
AWS_DEFAULT_REGION, which the signer reads per request; MODEL (the model's
name); SOURCE_WITH (a model directory holding steward.json), SOURCE_WITHOUT (one without);
MANIFEST_JSON (a registration manifest for the steward.manifest tag); PREFIX (for paging
models); LOCAL_FILES=1 when the sources are local directories the client can download.
"""

import json
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

ENV = os.environ
MODEL = ENV["MODEL"]


BUILTIN_SIGV4 = ENV.get("MLFLOW_TRACKING_AWS_SIGV4") == "true"
SIGV4 = BUILTIN_SIGV4 or ENV.get("MLFLOW_TRACKING_AUTH") == "steward-sigv4"


def as_(who):
    if SIGV4:
        # The client builds its signer (requests_auth_aws_sigv4.AWSSigV4) per request, from
        # the environment's credentials.
        key = json.loads(ENV["AWS_KEYS"])[who]
        ENV["AWS_ACCESS_KEY_ID"] = key["id"]
        ENV["AWS_SECRET_ACCESS_KEY"] = key["secret"]
        if key.get("token"):
            ENV["AWS_SESSION_TOKEN"] = key["token"]
        else:
            ENV.pop("AWS_SESSION_TOKEN", None)
    else:
        # The client reads MLFLOW_TRACKING_TOKEN for every request.
        ENV["MLFLOW_TRACKING_TOKEN"] = ENV[f"TOKEN_{who.upper()}"]


def unauthenticated(c):
    """A caller Steward cannot authenticate is refused before anything is read."""
    if SIGV4:
        # API Gateway refuses a bad signature itself (403, its own body, no MLflow error_code:
        # the client reports it as INTERNAL_ERROR, and does not retry a 403).
        ENV["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        msg = refused("INTERNAL_ERROR", c.get_registered_model, MODEL)
        check("signature we calculated does not match" in msg, f"the gateway's refusal: {msg}")
    else:
        ENV["MLFLOW_TRACKING_TOKEN"] = "not-a-token"
        refused("UNAUTHENTICATED", c.get_registered_model, MODEL)


def refused(code, fn, *args, **kwargs):
    """Calls fn and returns the MlflowException's message; fails unless its code is `code`."""
    try:
        got = fn(*args, **kwargs)
    except MlflowException as e:
        assert e.error_code == code, f"{fn.__name__}: expected {code}, got {e.error_code}: {e.message}"
        return e.message
    raise AssertionError(f"{fn.__name__}{args}: expected {code}, got success: {got!r}")


def check(cond, what):
    assert cond, what


def phase_registry(c):
    as_("dev")
    rm = c.create_registered_model(MODEL, tags={"team": "risk"}, description="Credit risk scorer")
    check(rm.name == MODEL and rm.tags == {"team": "risk"}, f"created: {rm}")
    refused("RESOURCE_ALREADY_EXISTS", c.create_registered_model, MODEL)

    # No manifest anywhere: register_model fails at once, naming what is missing.
    msg = refused("INVALID_PARAMETER_VALUE", mlflow.register_model, ENV["SOURCE_WITHOUT"], MODEL)
    for field in ("steward.json", "owner", "risk_tier", "lineage", "card"):
        check(field in msg, f"the refusal names {field}: {msg}")

    # steward.json beside the model.
    mv = mlflow.register_model(ENV["SOURCE_WITH"], MODEL, tags={"mlflow.source.git.commit": "4be5d6f"})
    check(mv.version == "1" and mv.status == "READY", f"v1: {mv}")
    check(mv.source == ENV["SOURCE_WITH"], f"v1 source: {mv.source}")
    check(mv.current_stage == "None", f"v1 stage: {mv.current_stage}")

    # The manifest in a tag; a half manifest names every missing field.
    half = json.dumps({"owner": json.loads(ENV["MANIFEST_JSON"])["owner"]})
    msg = refused(
        "INVALID_PARAMETER_VALUE",
        c.create_model_version, MODEL, ENV["SOURCE_WITHOUT"], tags={"steward.manifest": half},
    )
    for field in ("risk_tier", "artifact", "evaluations", "card"):
        check(field in msg, f"the refusal names {field}: {msg}")
    mv2 = c.create_model_version(
        MODEL, ENV["SOURCE_WITHOUT"], run_id="run-42",
        tags={"steward.manifest": ENV["MANIFEST_JSON"], "mlflow.source.git.commit": "4be5d6f"},
        description="from a tag",
    )
    check(mv2.version == "2" and mv2.run_id == "run-42", f"v2: {mv2}")

    got = c.get_registered_model(MODEL)
    check(got.description == "Credit risk scorer", f"description: {got.description}")
    check({v.version for v in got.latest_versions} == {"2"}, f"latest: {got.latest_versions}")
    check(got.creation_timestamp > 1_700_000_000_000, f"ms timestamps: {got.creation_timestamp}")

    c.update_registered_model(MODEL, description="Scores credit risk")
    c.set_registered_model_tag(MODEL, "domain", "lending")
    c.delete_registered_model_tag(MODEL, "team")
    got = c.get_registered_model(MODEL)
    check(got.description == "Scores credit risk", f"updated: {got.description}")
    check(got.tags == {"domain": "lending"}, f"tags: {got.tags}")

    c.set_model_version_tag(MODEL, "1", "quality", "gold")
    c.update_model_version(MODEL, "1", description="first")
    v1 = c.get_model_version(MODEL, "1")
    check(v1.tags.get("quality") == "gold" and v1.description == "first", f"v1: {v1}")
    c.delete_model_version_tag(MODEL, "1", "quality")
    check("quality" not in c.get_model_version(MODEL, "1").tags, "tag deleted")
    refused("PERMISSION_DENIED", c.set_model_version_tag, MODEL, "2", "mlflow.source.git.commit", "other")
    refused("PERMISSION_DENIED", c.delete_model_version_tag, MODEL, "2", "mlflow.source.git.commit")

    # Free aliases are free; the production alias and stage are deployments, refused now.
    c.set_registered_model_alias(MODEL, "candidate", "2")
    check(c.get_model_version_by_alias(MODEL, "candidate").version == "2", "candidate alias")
    check(c.get_registered_model(MODEL).aliases == {"candidate": "2"}, "aliases listed")
    refused("PERMISSION_DENIED", c.set_registered_model_alias, MODEL, "champion", "1")
    as_("rel")
    msg = refused("PERMISSION_DENIED", c.set_registered_model_alias, MODEL, "champion", "1")
    check("approved" in msg, f"the gate's reasons: {msg}")
    msg = refused("PERMISSION_DENIED", c.transition_model_version_stage, MODEL, "1", "Production")
    check("approved" in msg, f"the gate's reasons: {msg}")
    as_("dev")
    refused("PERMISSION_DENIED", c.transition_model_version_stage, MODEL, "1", "Staging")
    refused("RESOURCE_DOES_NOT_EXIST", c.get_model_version_by_alias, MODEL, "champion")

    check(c.get_model_version_download_uri(MODEL, "1") == ENV["SOURCE_WITH"], "download uri")

    # Search: filters, the client's prompt filter, paging over more than one page.
    prefix = ENV["PREFIX"]
    for i in range(5):
        c.create_registered_model(f"{prefix}-p{i}", tags={"batch": "paging" if i % 2 == 0 else "odd"})
    seen, token, pages = [], None, 0
    while True:
        page = c.search_registered_models(f"name LIKE '{prefix}-p%'", max_results=2, page_token=token)
        seen += [m.name for m in page]
        pages += 1
        token = page.token
        if not token:
            break
    check(seen == [f"{prefix}-p{i}" for i in range(5)] and pages == 3, f"paged: {seen} in {pages}")
    upper = c.search_registered_models(f"name ILIKE '{prefix.upper()}-P%' AND tags.batch = 'paging'")
    check([m.name for m in upper] == [f"{prefix}-p0", f"{prefix}-p2", f"{prefix}-p4"], f"ilike+tag: {upper}")
    desc = c.search_registered_models(f"name LIKE '{prefix}-p%'", order_by=["name DESC"], max_results=1)
    check(desc[0].name == f"{prefix}-p4", f"order_by: {desc}")
    exact = c.search_registered_models(f"name = '{MODEL}'")
    check([m.name for m in exact] == [MODEL], f"exact: {exact}")
    versions = c.search_model_versions(f"name = '{MODEL}'")
    check(sorted(v.version for v in versions) == ["1", "2"], f"versions: {versions}")
    by_run = c.search_model_versions(f"name = '{MODEL}' AND run_id = 'run-42'")
    check([v.version for v in by_run] == ["2"], f"run_id filter: {by_run}")
    paged = c.search_model_versions(f"name = '{MODEL}'", max_results=1)
    check(len(paged) == 1 and paged.token, f"versions page: {paged}")
    refused("INVALID_PARAMETER_VALUE", c.search_registered_models, "owner = 'x'")

    # Errors as MLflow's codes.
    refused("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, f"{prefix}-absent")
    refused("RESOURCE_DOES_NOT_EXIST", c.get_model_version, MODEL, "99")
    refused("INVALID_PARAMETER_VALUE", c.create_registered_model, "Not A Valid Name!")
    refused("INVALID_PARAMETER_VALUE", c.get_model_version, MODEL, "one")
    unauthenticated(c)
    as_("dev")

    # Rename and delete: only what has no Steward version.
    refused("PERMISSION_DENIED", c.rename_registered_model, MODEL, f"{prefix}-renamed")
    c.rename_registered_model(f"{prefix}-p1", f"{prefix}-renamed")
    refused("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, f"{prefix}-p1")
    check(c.get_registered_model(f"{prefix}-renamed").tags == {"batch": "odd"}, "renamed keeps tags")
    refused("RESOURCE_ALREADY_EXISTS", c.rename_registered_model, f"{prefix}-renamed", f"{prefix}-p0")
    c.delete_registered_model(f"{prefix}-renamed")
    refused("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, f"{prefix}-renamed")
    refused("PERMISSION_DENIED", c.delete_registered_model, MODEL)

    # Deleting a version retires it: Steward keeps it, archived.
    c.delete_model_version(MODEL, "2")
    check(c.get_model_version(MODEL, "2").current_stage == "Archived", "v2 archived")
    latest = c.get_latest_versions(MODEL, stages=["None"])
    check([v.version for v in latest] == ["1"], f"latest None: {latest}")


def phase_staging(c):
    as_("dev")
    mv = c.transition_model_version_stage(MODEL, "1", "Staging")
    check(mv.current_stage == "Staging", f"staging: {mv}")
    check(c.get_model_version_by_alias(MODEL, "staging").version == "1", "staging alias")
    # Staging is not production: the champion alias is still refused.
    as_("rel")
    refused("PERMISSION_DENIED", c.set_registered_model_alias, MODEL, "champion", "1")


def phase_production(c):
    as_("dev")
    refused("PERMISSION_DENIED", c.set_registered_model_alias, MODEL, "champion", "1")
    as_("rel")
    c.set_registered_model_alias(MODEL, "champion", "1")
    mv = c.get_model_version_by_alias(MODEL, "champion")
    check(mv.version == "1" and mv.current_stage == "Production", f"champion: {mv}")
    check(set(mv.aliases) >= {"champion", "production"}, f"aliases: {mv.aliases}")
    # Already there: a no-op, not an error.
    c.transition_model_version_stage(MODEL, "1", "Production")
    c.set_registered_model_alias(MODEL, "production", "1")
    refused("PERMISSION_DENIED", c.delete_registered_model_alias, MODEL, "champion")
    refused("PERMISSION_DENIED", c.delete_model_version, MODEL, "1")
    refused("PERMISSION_DENIED", c.delete_registered_model, MODEL)
    refused("PERMISSION_DENIED", c.transition_model_version_stage, MODEL, "1", "None")
    if ENV.get("LOCAL_FILES") == "1":
        dst = tempfile.mkdtemp()
        path = mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion", dst_path=dst)
        with open(os.path.join(path, "MLmodel")) as f:
            check("steward-test-model" in f.read(), "models:/name@champion loads the production files")


def phase_builtin_sigv4(c):
    """MLflow's own signer (MLFLOW_TRACKING_AWS_SIGV4=true) against a gateway that checks SigV4
    as specified: a request whose query has no space passes; a search, whose filter always has
    one, is refused, since the signer signs '+' where SigV4 canonicalizes '%20'."""
    as_("dev")
    check(c.get_registered_model(MODEL).name == MODEL, "a GET without spaces passes")
    c.set_registered_model_tag(MODEL, "signed-by", "builtin")
    check(c.get_registered_model(MODEL).tags.get("signed-by") == "builtin", "a POST passes")
    msg = refused("INTERNAL_ERROR", c.search_registered_models, f"name = '{MODEL}'")
    check("signature we calculated does not match" in msg, f"the gateway's refusal: {msg}")


if __name__ == "__main__":
    phase = sys.argv[1]
    client = MlflowClient()
    {
        "registry": phase_registry,
        "staging": phase_staging,
        "production": phase_production,
        "builtin_sigv4": phase_builtin_sigv4,
    }[phase](client)
    print(f"phase {phase}: ok")
