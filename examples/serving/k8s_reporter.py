#!/usr/bin/env python3
"""Reports what a Kubernetes cluster serves to Steward's serving inventory (POST /v1/serving).

Run by examples/serving/cronjob.yaml inside the cluster. It reads, through the Kubernetes API
with the pod's service account (read-only: see the ClusterRole there):

  KServe    serving.kserve.io/v1beta1 InferenceService   spec.predictor.model.storageUri
            (or spec.predictor.<framework>.storageUri)
  Seldon    machinelearning.seldon.io/v1 SeldonDeployment spec.predictors[].graph.modelUri
  BentoML   serving.yatai.ai/v2alpha1 BentoDeployment     spec.bento (the Bento tag)
  plain     apps/v1 Deployment labelled steward.io/serving=true: each container's image

and reports one endpoint per model: platform kserve|seldon|bentoml|kubernetes, endpoint
NAMESPACE/NAME[/PREDICTOR], environment from the label steward.io/environment (default
STEWARD_ENVIRONMENT, else production), and the model/version labels steward.io/model and
steward.io/version when present (Steward checks them against the artifact, never trusts them).

Environment: STEWARD_SERVER (the API), STEWARD_TOKEN (an operator's bearer token),
STEWARD_ENVIRONMENT; STEWARD_K8S_ITEMS_FILE reads the objects from a JSON file instead of the
API (a `kubectl get ... -o json` list; for a dry run and for Steward's tests).
Standard library only. Exits 1 if any report was refused.
"""

import datetime
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
SOURCES = [
    ("kserve", "/apis/serving.kserve.io/v1beta1/inferenceservices"),
    ("seldon", "/apis/machinelearning.seldon.io/v1/seldondeployments"),
    ("bentoml", "/apis/serving.yatai.ai/v2alpha1/bentodeployments"),
    ("kubernetes", "/apis/apps/v1/deployments?labelSelector=steward.io%2Fserving%3Dtrue"),
]


def k8s_items():
    """Every object of every source, as (platform, object)."""
    path = os.environ.get("STEWARD_K8S_ITEMS_FILE")
    if path:
        with open(path) as f:
            items = json.load(f)["items"]
        return [(platform_of(o), o) for o in items]
    token = open(f"{SA}/token").read().strip()
    ctx = ssl.create_default_context(cafile=f"{SA}/ca.crt")
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    out = []
    for platform, path in SOURCES:
        req = urllib.request.Request(f"https://{host}:{port}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                out += [(platform, o) for o in json.load(r).get("items", [])]
        except urllib.error.HTTPError as e:
            if e.code != 404:  # 404: that CRD is not installed in this cluster
                raise
    return out


def platform_of(o):
    kind = o.get("kind", "")
    return {"InferenceService": "kserve", "SeldonDeployment": "seldon",
            "BentoDeployment": "bentoml"}.get(kind, "kubernetes")


def models(platform, o):
    """(endpoint suffix, artifact URI) of each model an object serves."""
    spec = o.get("spec", {})
    if platform == "kserve":
        pred = spec.get("predictor", {})
        for key, val in pred.items():
            if isinstance(val, dict) and val.get("storageUri"):
                yield "", val["storageUri"]
                return
    elif platform == "seldon":
        for p in spec.get("predictors", []):
            if p.get("graph", {}).get("modelUri"):
                yield "/" + p.get("name", "default"), p["graph"]["modelUri"]
    elif platform == "bentoml":
        if spec.get("bento"):
            yield "", "bento://" + spec["bento"]
    else:
        for c in spec.get("template", {}).get("spec", {}).get("containers", []):
            if c.get("image"):
                yield "/" + c.get("name", "main"), c["image"]


def report(server, token, body):
    req = urllib.request.Request(server.rstrip("/") + "/v1/serving",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        print(f"refused {body['endpoint']}: {e.code} {e.read().decode()}", file=sys.stderr)
        return None


def main():
    server, token = os.environ["STEWARD_SERVER"], os.environ["STEWARD_TOKEN"]
    default_env = os.environ.get("STEWARD_ENVIRONMENT", "production")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    failed = 0
    for platform, o in k8s_items():
        meta = o.get("metadata", {})
        labels = meta.get("labels", {}) or {}
        for suffix, uri in models(platform, o):
            body = {"platform": platform,
                    "environment": labels.get("steward.io/environment", default_env),
                    "endpoint": f"{meta.get('namespace', 'default')}/{meta.get('name')}{suffix}",
                    "artifact": {"uri": uri}, "observed_at": now}
            if labels.get("steward.io/model"):
                body["model"] = labels["steward.io/model"]
                if labels.get("steward.io/version", "").isdigit():
                    body["version"] = int(labels["steward.io/version"])
            record = report(server, token, body)
            if record is None:
                failed += 1
            else:
                print(f"{body['endpoint']}: {record['outcome']} ({record['reason']})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
