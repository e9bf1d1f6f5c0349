"""Offline checks of Steward's deployment artefacts (testing tier 4), driven by scripts/static-checks.

    python scripts/static_checks.py asl OUTDIR   lint statemachines/*.asl.json; render them with
                                                  the template's substitutions into OUTDIR
    python scripts/static_checks.py events       schemas, samples, rule patterns, coverage
    python scripts/static_checks.py template     rules vs events/rules, env vars, binaries, queues
    python scripts/static_checks.py sam OUT.json  SAM-transform the template (needs
                                                  aws-sam-translator; exit 3 when it is missing)

Each command prints one line per finding and exits 1 if any check failed. Only the standard
library, PyYAML and jsonschema are needed (both come with cfn-lint in the emulator venv).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "events" / "schemas"
SAMPLES = ROOT / "events" / "samples"
RULES = ROOT / "events" / "rules"
MACHINES = ROOT / "statemachines"
TEMPLATE = ROOT / "infra" / "template.yaml"

# Step Functions' limit on a Standard execution: one year.
ONE_YEAR = 365 * 24 * 3600
# The sources Steward publishes under; their events carry detail.schema_version.
STEWARD_SOURCES = {"steward.governance", "steward.workflow", "steward.monitoring"}

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"  FAIL {msg}")


def ok(msg: str) -> None:
    print(f"  ok   {msg}")


def finish() -> int:
    return 1 if failures else 0


# --------------------------------------------------------------------------------------- JSON


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise DuplicateKey(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def load_json(path: Path):
    """JSON that rejects duplicate keys (copying an example can leave two "source" keys)."""
    return json.loads(path.read_text(), object_pairs_hook=_no_duplicates)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --------------------------------------------------------------------------------------- YAML


def load_template() -> dict:
    """The SAM template with CloudFormation's short tags read as their long forms."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader, suffix, node):
        name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {name: value}

    Loader.add_multi_constructor("!", tag)
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)


def resources(template: dict, kind: str) -> dict:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == kind}


# ------------------------------------------------------------------------------ event patterns


class PatternError(ValueError):
    pass


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _leaf_matches(conditions: list, present: bool, value) -> bool:
    values = value if isinstance(value, list) else [value]
    for c in conditions:
        if not isinstance(c, dict):
            if present and any(_same(v, c) for v in values):
                return True
            continue
        if len(c) != 1:
            raise PatternError(f"a matcher object has exactly one key: {c}")
        (op, arg), = c.items()
        if op == "exists":
            if arg is present:
                return True
            continue
        if not present:
            continue
        if op == "prefix":
            hit = any(isinstance(v, str) and v.startswith(arg) for v in values)
        elif op == "suffix":
            hit = any(isinstance(v, str) and v.endswith(arg) for v in values)
        elif op == "equals-ignore-case":
            hit = any(isinstance(v, str) and v.lower() == arg.lower() for v in values)
        elif op == "anything-but":
            banned = arg if isinstance(arg, list) else [arg]
            hit = any(not any(_same(v, b) for b in banned) for v in values)
        else:
            raise PatternError(f"matcher {op!r} is not supported by this checker; extend _leaf_matches")
        if hit:
            return True
    return False


def matches(pattern: dict, event) -> bool:
    """EventBridge matching for the subset of pattern syntax Steward uses: exact values, nested
    objects, prefix, suffix, equals-ignore-case, anything-but, exists. An array in the event
    matches when any element does."""
    if not isinstance(pattern, dict) or not pattern:
        raise PatternError("a pattern is a non-empty JSON object")
    for key, cond in pattern.items():
        present = isinstance(event, dict) and key in event
        value = event.get(key) if present else None
        if isinstance(cond, dict):
            if not isinstance(value, dict) or not matches(cond, value):
                return False
        elif isinstance(cond, list):
            if not cond:
                raise PatternError(f"{key}: an empty array matches nothing")
            if not _leaf_matches(cond, present, value):
                return False
        else:
            raise PatternError(f"{key}: a pattern value is an array or an object, not {cond!r}")
    return True


def _self_test_matcher() -> None:
    ev = {"source": "s", "detail": {"a": "steward-model-x", "n": 1, "l": ["x", "y"], "b": True}}
    cases = [
        ({"source": ["s"]}, True), ({"source": ["t"]}, False),
        ({"detail": {"a": [{"prefix": "steward-model-"}]}}, True),
        ({"detail": {"a": [{"prefix": "steward-ops-"}]}}, False),
        ({"detail": {"n": [1]}}, True), ({"detail": {"n": ["1"]}}, False),
        ({"detail": {"b": [1]}}, False), ({"detail": {"b": [True]}}, True),
        ({"detail": {"l": ["y"]}}, True), ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"a": [{"exists": False}]}}, False),
        ({"detail": {"a": [{"anything-but": ["steward-model-x"]}]}}, False),
        ({"detail": {"missing": ["x"]}}, False), ({"detail": {"a": {"nested": ["x"]}}}, False),
    ]
    for pattern, want in cases:
        if matches(pattern, ev) is not want:
            raise AssertionError(f"matcher self-test: {pattern} should {'' if want else 'not '}match")


# ----------------------------------------------------------------------------------------- ASL


def walk_states(states: dict, path: str = ""):
    for name, state in states.items():
        yield f"{path}{name}", state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from walk_states(state[key]["States"], f"{path}{name}/")
        for i, branch in enumerate(state.get("Branches", [])):
            yield from walk_states(branch["States"], f"{path}{name}[{i}]/")


def template_substitutions(template: dict) -> dict[str, set[str]]:
    """DefinitionUri file name -> the DefinitionSubstitutions keys the template gives it."""
    out = {}
    for _, sm in resources(template, "AWS::Serverless::StateMachine").items():
        props = sm.get("Properties", {})
        uri = props.get("DefinitionUri")
        if isinstance(uri, str):
            out[Path(uri).name] = set(props.get("DefinitionSubstitutions", {}))
    return out


def sample_value(name: str) -> str:
    """A representative value for a substitution, as SAM would insert it."""
    if name.endswith("Arn"):
        return f"arn:aws:lambda:eu-west-1:123456789012:function:steward-{name[:-3].lower()}"
    if name.endswith("Seconds"):
        return "604800"
    if name.endswith("QueueUrl"):
        return "https://sqs.eu-west-1.amazonaws.com/123456789012/steward-workflow-events"
    return "steward-events"


def schema_sources(schema: dict) -> set[str]:
    src = schema["properties"]["source"]
    return {src["const"]} if "const" in src else set(src["enum"])


def load_schemas() -> dict[str, dict]:
    return {p.stem: load_json(p) for p in sorted(SCHEMAS.glob("*.json"))}


def cmd_asl(outdir: str) -> int:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    template = load_template()
    subs = template_substitutions(template)
    schemas = load_schemas()
    by_detail_type = {s["properties"]["detail-type"]["const"]: s for s in schemas.values()}
    machines = sorted(MACHINES.glob("*.asl.json"))
    if not machines:
        fail("no statemachines/*.asl.json")
    for path in machines:
        name = rel(path)
        try:
            asl = load_json(path)
        except (ValueError, DuplicateKey) as e:
            fail(f"{name}: not valid JSON: {e}")
            continue
        text = path.read_text()
        used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
        given = subs.get(path.name)
        if given is None:
            fail(f"{name}: no AWS::Serverless::StateMachine in the template has DefinitionUri .../{path.name}")
        elif used != given:
            fail(f"{name}: placeholders {sorted(used)} != the template's DefinitionSubstitutions {sorted(given)}")
        else:
            ok(f"{name}: placeholders {sorted(used)} are exactly the template's substitutions")

        top = asl.get("TimeoutSeconds")
        if not isinstance(top, int) or not 0 < top < ONE_YEAR:
            fail(f"{name}: top-level TimeoutSeconds must be set below one year ({ONE_YEAR} s); it bounds every wait")
        else:
            ok(f"{name}: the execution times out after {top} s, inside the one-year limit")

        problems = 0
        for sname, st in walk_states(asl["States"]):
            kind = st.get("Type")
            where = f"{name}: state {sname}"
            if kind == "Task":
                if not st.get("Retry"):
                    fail(f"{where}: a Task needs a Retry on transient errors"); problems += 1
                if not st.get("Catch"):
                    fail(f"{where}: a Task needs a Catch"); problems += 1
                resource = st.get("Resource", "")
                retried = {e for r in st.get("Retry", []) for e in r.get("ErrorEquals", [])}
                if "States.ALL" in retried or "States.Timeout" in retried:
                    fail(f"{where}: retrying States.ALL/States.Timeout would repeat a decided or expired step"); problems += 1
                if resource.endswith(".waitForTaskToken"):
                    if "TimeoutSeconds" not in st and "TimeoutSecondsPath" not in st:
                        fail(f"{where}: a task-token wait needs TimeoutSeconds or TimeoutSecondsPath"); problems += 1
                    elif st.get("TimeoutSeconds", 0) >= ONE_YEAR:
                        fail(f"{where}: TimeoutSeconds reaches the one-year limit"); problems += 1
                    caught = {e for c in st.get("Catch", []) for e in c.get("ErrorEquals", [])}
                    if "States.Timeout" not in caught:
                        fail(f"{where}: the timeout of a task-token wait must be caught on the Task itself"); problems += 1
                if resource.startswith("arn:aws:states:::events:putEvents"):
                    for entry in st.get("Parameters", {}).get("Entries", []):
                        dt, src = entry.get("DetailType"), entry.get("Source")
                        if src != "steward.workflow":
                            fail(f"{where}: workflow events use source steward.workflow, not {src!r}"); problems += 1
                        schema = by_detail_type.get(dt)
                        if schema is None:
                            fail(f"{where}: no schema in events/schemas for detail-type {dt!r}"); problems += 1
                        elif "steward.workflow" not in schema_sources(schema):
                            fail(f"{where}: the {dt} schema does not allow source steward.workflow"); problems += 1
                        detail = entry.get("Detail", {})
                        if detail.get("schema_version") != "1":
                            fail(f"{where}: {dt}'s Detail needs \"schema_version\": \"1\""); problems += 1
            elif kind == "Wait":
                if st.get("Seconds", 0) >= ONE_YEAR:
                    fail(f"{where}: Wait reaches the one-year limit"); problems += 1
        if not problems:
            ok(f"{name}: every Task retries and catches; every task-token wait has a timeout caught on the Task; events are steward.workflow with schemas")

        rendered = text
        for key in sorted(used):
            rendered = rendered.replace("${" + key + "}", sample_value(key))
        try:
            json.loads(rendered)
        except ValueError as e:
            fail(f"{name}: not JSON once substituted: {e}")
        (out / path.name).write_text(rendered)
    return finish()


# -------------------------------------------------------------------------------------- events


def service_detail_types() -> set[str]:
    # Every governance event is a variant of the typed GovernanceEvent, declared (one name a
    # line) in the governance_events! block of crates/core/src/events/mod.rs.
    text = (ROOT / "crates" / "core" / "src" / "events" / "mod.rs").read_text()
    block = re.search(r"^governance_events! \{(.*?)^\}", text, re.S | re.M)
    if not block:
        return set()
    return set(re.findall(r"^\s+([A-Z][A-Za-z]+),\s*$", block.group(1), re.M))


def workflow_detail_types() -> set[str]:
    out = set()
    for path in MACHINES.glob("*.asl.json"):
        for _, st in walk_states(load_json(path)["States"]):
            for entry in st.get("Parameters", {}).get("Entries", []) if isinstance(st.get("Parameters"), dict) else []:
                if "DetailType" in entry:
                    out.add(entry["DetailType"])
    return out


def mutations(sample: dict):
    """Broken copies of a valid sample that its schema must reject."""
    import copy

    def drop(obj, *keys):
        o = copy.deepcopy(obj)
        cur = o
        for k in keys[:-1]:
            cur = cur[k]
        del cur[keys[-1]]
        return o

    def put(obj, value, *keys):
        o = copy.deepcopy(obj)
        cur = o
        for k in keys[:-1]:
            cur = cur[k]
        cur[keys[-1]] = value
        return o

    yield "without detail-type", drop(sample, "detail-type")
    yield "with another detail-type", put(sample, "SomethingElse", "detail-type")
    yield "with another source", put(sample, "example.other", "source")
    yield "without account", drop(sample, "account")
    yield "with a non-RFC 3339 time", put(sample, "27/11/2026 10:00", "time")
    yield "with detail not an object", put(sample, "x", "detail")
    if sample.get("source") in STEWARD_SOURCES:
        yield "without detail.schema_version", drop(sample, "detail", "schema_version")
        yield "with detail.schema_version 2", put(sample, "2", "detail", "schema_version")
    if sample.get("source") == "steward.governance":
        yield "without detail.audit_seq", drop(sample, "detail", "audit_seq")


def cmd_events() -> int:
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import SchemaError

    _self_test_matcher()
    ok("pattern matcher self-test")
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        fail("jsonschema cannot check format date-time here (install rfc3339-validator)")

    # Schemas
    before = len(failures)
    schemas, validators = {}, {}
    for path in sorted(SCHEMAS.glob("*.json")):
        try:
            schema = load_json(path)
            Draft202012Validator.check_schema(schema)
        except (ValueError, DuplicateKey, SchemaError) as e:
            fail(f"{rel(path)}: not a valid Draft 2020-12 schema: {str(e).splitlines()[0]}")
            continue
        if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
            fail(f"{rel(path)}: $schema must be Draft 2020-12")
        props = schema.get("properties", {})
        missing = [k for k in ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
                   if k not in schema.get("required", [])]
        if missing or "const" not in props.get("detail-type", {}):
            fail(f"{rel(path)}: must describe the full envelope (required {missing}, detail-type const)")
        schemas[path.stem] = schema
        validators[path.stem] = Draft202012Validator(schema, format_checker=checker)
    if len(failures) == before:
        ok(f"{len(schemas)} schemas are valid Draft 2020-12 and describe the whole envelope")

    # Coverage: every detail-type Steward emits has a schema allowing its source.
    by_dt = {s["properties"]["detail-type"]["const"]: (name, s) for name, s in schemas.items()}
    for label, types, source in (("GovernanceEvent (crates/core/src/events/mod.rs)", service_detail_types(), "steward.governance"),
                                 ("statemachines", workflow_detail_types(), "steward.workflow")):
        before = len(failures)
        if not types:
            fail(f"found no detail-types in {label}")
        for dt in sorted(types):
            if dt not in by_dt:
                fail(f"{label} emits {dt} but events/schemas/{dt}.json does not exist")
            elif source not in schema_sources(by_dt[dt][1]):
                fail(f"{label} emits {dt} with source {source}, which its schema does not allow")
        if len(failures) == before:
            ok(f"every detail-type {label} emits ({len(types)}) has a schema allowing source {source}")
    before = len(failures)
    for name, s in schemas.items():
        if schema_sources(s) & STEWARD_SOURCES:
            if not _requires_schema_version(s):
                fail(f"{name}: a Steward event's detail must require schema_version (const \"1\")")
    if len(failures) == before:
        ok("every Steward event schema requires detail.schema_version")

    # Samples
    samples = {}
    for path in sorted(SAMPLES.glob("*.json")):
        try:
            samples[path] = load_json(path)
        except (ValueError, DuplicateKey) as e:
            fail(f"{rel(path)}: not valid JSON: {e}")
    seen_sources: dict[str, set[str]] = {name: set() for name in schemas}
    valid = tried = accepted = 0
    for path, sample in samples.items():
        name = path.name.split(".", 1)[0]
        v = validators.get(name)
        if v is None:
            fail(f"{rel(path)}: no schema events/schemas/{name}.json (samples are <Schema>[.<variant>].json)")
            continue
        errors = sorted(v.iter_errors(sample), key=lambda e: list(e.absolute_path))
        if errors:
            for e in errors[:5]:
                fail(f"{rel(path)}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
            continue
        valid += 1
        seen_sources[name].add(sample["source"])
        for what, broken in mutations(sample):
            tried += 1
            if v.is_valid(broken):
                accepted += 1
                fail(f"{rel(path)}: the {name} schema accepts the sample {what}")
    ok(f"{valid}/{len(samples)} samples validate against their schemas (Draft 2020-12, formats checked)")
    if not accepted:
        ok(f"all {tried} broken copies of the samples (envelope, schema_version, audit_seq) are rejected")
    before = len(failures)
    for name, s in schemas.items():
        missing = schema_sources(s) - seen_sources[name]
        if missing:
            fail(f"{name}: no valid sample with source {sorted(missing)}")
    if len(failures) == before:
        ok("every schema has a valid sample for each of its sources")

    # Rule patterns
    events = [s for s in samples.values() if isinstance(s, dict)]
    rules = sorted(RULES.glob("*.json"))
    if not rules:
        fail("no events/rules/*.json")
    for path in rules:
        try:
            pattern = load_json(path)
            hits = [p.name for p, s in samples.items() if matches(pattern, s)]
        except (ValueError, DuplicateKey, PatternError) as e:
            fail(f"{rel(path)}: {e}")
            continue
        if not hits:
            fail(f"{rel(path)}: matches no sample in events/samples")
        elif len(hits) == len(events):
            fail(f"{rel(path)}: matches every sample; a rule that takes everything is a mistake")
        else:
            ok(f"{rel(path)} matches {len(hits)} sample(s): {', '.join(sorted(hits))}")
    return finish()


def _requires_schema_version(schema: dict) -> bool:
    variants = schema.get("oneOf") or [schema]
    for var in variants:
        detail = var.get("properties", {}).get("detail") or schema["properties"]["detail"]
        if "schema_version" not in detail.get("required", []):
            return False
        sv = detail.get("properties", {}).get("schema_version", {})
        if "$ref" in sv:
            sv = schema.get("$defs", {}).get(sv["$ref"].split("/")[-1], {})
        if sv.get("const") != "1":
            return False
    return True


# ------------------------------------------------------------------------------------ template


def aws_env_variables() -> set[str]:
    text = (ROOT / "crates" / "aws" / "src" / "env.rs").read_text()
    m = re.search(r"VARIABLES:[^=]*=\s*&\[(.*?)\];", text, re.S)
    return set(re.findall(r'"(STEWARD_[A-Z_]+)"', m.group(1))) if m else set()


def function_binaries() -> dict[str, Path]:
    """[[bin]] name -> the binary's main.rs, for every functions/*/Cargo.toml."""
    out = {}
    for cargo in sorted((ROOT / "functions").glob("*/Cargo.toml")):
        data = tomllib.loads(cargo.read_text())
        for b in data.get("bin", []):
            out[b["name"]] = cargo.parent / b.get("path", "src/main.rs")
    return out


# Routes of the people's API that a browser must reach before it holds a token; every other
# route there needs the JWT authorizer (README, "Identities"; the template's conventions).
PEOPLE_PUBLIC_ROUTES = {"GET /", "ANY /console", "ANY /console/{proxy+}", "GET /v1/auth/oidc"}
PEOPLE_JWT_ROUTES = {"ANY /v1/{proxy+}", "ANY /api/{proxy+}"}
# Routes of the machines' API that vendors call with their own signature (Jira's and GitHub's
# webhooks; docs/integrations.md): no gateway authorizer, since they cannot sign with SigV4;
# the app refuses any request whose signature does not match. Exactly these, POST only.
SIGNED_WEBHOOK_ROUTES = {"POST /v1/integrations/jira/{name}", "POST /v1/integrations/github/{name}"}


def _ref(value) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def check_api_auth(template: dict) -> None:
    """Every route is authenticated: the IAM API's by AWS_IAM except exactly
    SIGNED_WEBHOOK_ROUTES (vendors' signatures, checked by the app), the people's API's by its
    JWT authorizer except exactly PEOPLE_PUBLIC_ROUTES (which the app authenticates itself)."""
    before = len(failures)
    sam_apis = resources(template, "AWS::Serverless::HttpApi")
    for logical, res in sam_apis.items():
        auth = res.get("Properties", {}).get("Auth", {})
        if auth.get("DefaultAuthorizer") != "AWS_IAM" or auth.get("EnableIamAuthorizer") is not True:
            fail(f"template {logical}: the machines' HTTP API must default to AWS_IAM (EnableIamAuthorizer)")
        if res.get("Properties", {}).get("DefinitionBody") or res.get("Properties", {}).get("DefinitionUri"):
            fail(f"template {logical}: an OpenAPI definition could add routes the checks cannot see")
    signed = set()
    for logical, res in resources(template, "AWS::Serverless::Function").items():
        for name, ev in res.get("Properties", {}).get("Events", {}).items():
            if ev.get("Type") != "HttpApi":
                continue
            props = ev.get("Properties", {})
            if _ref(props.get("ApiId")) not in sam_apis:
                fail(f"template {logical}.{name}: an HttpApi event must name the IAM HttpApi (implicit APIs have no IAM default)")
            authorizer = props.get("Auth", {}).get("Authorizer", "AWS_IAM")
            key = f"{props.get('Method', '').upper()} {props.get('Path')}"
            if key in SIGNED_WEBHOOK_ROUTES:
                signed.add(key)
                if authorizer != "NONE":
                    fail(f"template {logical}.{name}: {key} is called by a vendor with its own signature; it needs Authorizer NONE")
            elif authorizer != "AWS_IAM":
                fail(f"template {logical}.{name}: route authorizer {authorizer!r}, not AWS_IAM")
    if signed != SIGNED_WEBHOOK_ROUTES:
        fail(f"template: signed webhook routes {sorted(signed)}, expected exactly {sorted(SIGNED_WEBHOOK_ROUTES)}")

    raw_apis = resources(template, "AWS::ApiGatewayV2::Api")
    authorizers = resources(template, "AWS::ApiGatewayV2::Authorizer")
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    for api in raw_apis:
        jwt = set()
        for logical, res in authorizers.items():
            props = res.get("Properties", {})
            if _ref(props.get("ApiId")) != api:
                continue
            cfg = props.get("JwtConfiguration", {})
            if (props.get("AuthorizerType") != "JWT"
                    or props.get("IdentitySource") != ["$request.header.Authorization"]
                    or _ref(cfg.get("Issuer")) != "OidcIssuer" or not cfg.get("Audience")):
                fail(f"template {logical}: must be a JWT authorizer on the Authorization header, issuer OidcIssuer, with audiences")
            else:
                jwt.add(logical)
        seen = {}
        for logical, res in routes.items():
            props = res.get("Properties", {})
            if _ref(props.get("ApiId")) != api:
                continue
            key = props.get("RouteKey")
            if key in seen:
                fail(f"template {logical}: route {key!r} is also {seen[key]}")
            seen[key] = logical
            kind = props.get("AuthorizationType", "NONE")
            if key in PEOPLE_PUBLIC_ROUTES:
                if kind != "NONE" or "AuthorizerId" in props:
                    fail(f"template {logical}: {key} is reached before sign-in; it needs no gateway authorizer")
            elif kind != "JWT" or _ref(props.get("AuthorizerId")) not in jwt:
                fail(f"template {logical}: {key} must use {api}'s JWT authorizer ({kind} here)")
        expected = PEOPLE_PUBLIC_ROUTES | PEOPLE_JWT_ROUTES
        if set(seen) != expected:
            fail(f"template {api}: routes {sorted(seen)}, expected exactly {sorted(expected)}")
        stages = [r for r in resources(template, "AWS::ApiGatewayV2::Stage").values()
                  if _ref(r.get("Properties", {}).get("ApiId")) == api]
        if not stages or any(not s["Properties"].get("AccessLogSettings")
                             or not s["Properties"].get("DefaultRouteSettings", {}).get("ThrottlingRateLimit")
                             for s in stages):
            fail(f"template {api}: its stage needs access logging and throttling")
    if len(failures) == before:
        ok(f"routes: {', '.join(sorted(sam_apis))} AWS_IAM except exactly {sorted(SIGNED_WEBHOOK_ROUTES)}; "
           f"{', '.join(sorted(raw_apis))} JWT except exactly {sorted(PEOPLE_PUBLIC_ROUTES)}")


def cmd_template() -> int:
    template = load_template()
    variables = aws_env_variables()
    if not variables:
        fail("could not read AwsEnv::VARIABLES from crates/aws/src/env.rs")

    # Rule patterns: each template pattern is one of events/rules/*.json and each file is used.
    files = {}
    for path in sorted(RULES.glob("*.json")):
        try:
            files[path.name] = load_json(path)
        except (ValueError, DuplicateKey) as e:
            fail(f"{rel(path)}: {e}")
    used = set()
    patterned = {**resources(template, "AWS::Events::Rule"), **resources(template, "AWS::Events::Archive")}
    for logical, res in patterned.items():
        pattern = res.get("Properties", {}).get("EventPattern")
        if pattern is None:
            continue
        same = [n for n, p in files.items() if p == pattern]
        if not same:
            fail(f"template {logical}: its EventPattern is not any events/rules/*.json file")
        else:
            used.update(same)
            ok(f"template {logical}: EventPattern == events/rules/{same[0]}")
    for name in sorted(set(files) - used):
        fail(f"events/rules/{name}: no rule or archive in the template uses it")

    # Functions: runtime, architecture, build method, binaries, environment.
    globals_fn = template.get("Globals", {}).get("Function", {})
    binaries = function_binaries()
    functions = resources(template, "AWS::Serverless::Function")
    built = set()
    timeouts = {}
    for logical, res in functions.items():
        props = {**globals_fn, **res.get("Properties", {})}
        meta = res.get("Metadata", {})
        where = f"template {logical}"
        if props.get("Runtime") != "provided.al2023" or props.get("Architectures") != ["arm64"]:
            fail(f"{where}: must run on provided.al2023, arm64")
        binary = meta.get("BuildProperties", {}).get("Binary")
        if meta.get("BuildMethod") != "rust-cargolambda" or binary not in binaries:
            fail(f"{where}: needs BuildMethod rust-cargolambda and a BuildProperties.Binary of functions/*/Cargo.toml ({sorted(binaries)})")
            continue
        built.add(binary)
        timeouts[logical] = props.get("Timeout", 3)
        env = set(props.get("Environment", {}).get("Variables", {}))
        unknown = {v for v in env if v.startswith("STEWARD_")} - variables
        if unknown:
            fail(f"{where}: sets {sorted(unknown)}, which AwsEnv::VARIABLES does not read")
        for test_only in ("STEWARD_ENDPOINT_URL", "STEWARD_DYNAMODB_ENDPOINT_URL", "STEWARD_TEST_SIGNING_SEED"):
            if test_only in env:
                fail(f"{where}: {test_only} is for emulators only")
        main_rs = binaries[binary].read_text()
        if "lambda::init(" not in main_rs and "lambda::record_policy(" not in main_rs:
            fail(f"{where}: {rel(binaries[binary])} neither calls lambda::init nor lambda::record_policy: the policy in force would not reach the audit log at cold start")
        needed = set(re.findall(r'"(STEWARD_[A-Z_]+)"', main_rs))
        # Every function records the policy in force at cold start (AwsBackend::connect):
        # one without STEWARD_POLICY would record the default policy as a change.
        needed.add("STEWARD_POLICY")
        if needed - env:
            fail(f"{where}: {rel(binaries[binary])} requires {sorted(needed - env)}, not set")
        if not unknown and not needed - env:
            ok(f"{where}: binary {binary}; env {sorted(env)} covers what its main.rs requires")
    for missing in sorted(set(binaries) - built):
        fail(f"functions/: binary {missing} has no function in the template")

    # Queues: a DLQ after 5 receives; visibility >= 6x the consuming function's timeout.
    before = len(failures)
    queues = resources(template, "AWS::SQS::Queue")
    consumers = {}
    for logical, res in functions.items():
        for ev in res.get("Properties", {}).get("Events", {}).values():
            if ev.get("Type") == "SQS":
                q = ev["Properties"]["Queue"]
                if isinstance(q, dict) and "Fn::GetAtt" in q:
                    consumers[q["Fn::GetAtt"][0]] = logical
                if ev["Properties"].get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
                    fail(f"template {logical}: SQS event sources report batch item failures")
    dlqs = set()
    for logical, res in queues.items():
        redrive = res.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            dlqs.add(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0])
            if redrive.get("maxReceiveCount") != 5:
                fail(f"template {logical}: maxReceiveCount must be 5")
    checked = 0
    for logical, res in queues.items():
        if logical in dlqs or logical.endswith("DLQ"):
            continue
        checked += 1
        if not res.get("Properties", {}).get("RedrivePolicy"):
            fail(f"template {logical}: a queue needs a dead-letter queue")
        if logical in consumers:
            vis = res["Properties"].get("VisibilityTimeout", 30)
            need = 6 * timeouts[consumers[logical]]
            if vis < need:
                fail(f"template {logical}: VisibilityTimeout {vis} < 6 x {consumers[logical]}'s timeout ({need})")
    if len(failures) == before:
        ok(f"{checked} queues have DLQs (maxReceiveCount 5) and visibility >= 6x their consumer's timeout")

    check_api_auth(template)
    return finish()


# ----------------------------------------------------------------------------------------- SAM


def cmd_sam(out: str) -> int:
    try:
        from samtranslator.translator.transform import transform
    except ImportError:
        print("  skip aws-sam-translator is not installed")
        return 3
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator asks boto for one
    template = load_template()
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Serverless::StateMachine":
            props = res["Properties"]
            props["Definition"] = load_json((TEMPLATE.parent / props.pop("DefinitionUri")).resolve())
    template["Globals"]["Function"]["CodeUri"] = "s3://example-bucket/steward.zip"

    class NoManagedPolicies:
        def load(self):
            return {}

    try:
        result = transform(template, {}, NoManagedPolicies())
    except Exception as e:  # the translator's own exceptions list every cause
        fail(f"SAM transform: {e}")
        for cause in getattr(e, "causes", []):
            fail(f"  {getattr(cause, 'message', cause)}")
        return finish()
    Path(out).write_text(json.dumps(result, indent=1))
    ok(f"SAM transform: {len(result['Resources'])} CloudFormation resources")
    return finish()


def main(argv: list[str]) -> int:
    cmds = {"asl": (cmd_asl, 1), "events": (cmd_events, 0), "template": (cmd_template, 0), "sam": (cmd_sam, 1)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    fn, _ = cmds[argv[1]]
    return fn(*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
