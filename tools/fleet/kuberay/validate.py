#!/usr/bin/env python3
"""Validates a KubeRay RayJob manifest offline, without a cluster.

    validate.py tools/fleet/rayjob.yaml [--k8s 1.33]

Two layers, both strict about unknown fields where the schemas are:
1. the RayJob against KubeRay's CRD schema, unknown fields included (rayjob.schema.json next to this file, made by
   trim_crd.py from the CRD KubeRay ships), with `jsonschema`;
2. each pod template in it (head, worker groups, submitter) as a core/v1 PodTemplate against
   Kubernetes' own schemas for `--k8s`, with `kubernetes-validate` (strict: unknown fields fail).
Prints what it checked; exit 1 with every error found.
"""

import argparse
import json
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent


def strict(schema):
    """Unknown fields are errors, as with `kubectl --validate=strict`: a CRD's schema leaves
    them to be pruned silently, which would hide a misspelt key."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


def pod_templates(spec: dict) -> list[tuple[str, dict]]:
    """(where, template) of every pod template of a RayJob's spec."""
    out = []
    cluster = spec.get("rayClusterSpec") or {}
    if "template" in (cluster.get("headGroupSpec") or {}):
        out.append(("spec.rayClusterSpec.headGroupSpec.template", cluster["headGroupSpec"]["template"]))
    for k, g in enumerate(cluster.get("workerGroupSpecs") or []):
        if "template" in g:
            out.append((f"spec.rayClusterSpec.workerGroupSpecs[{k}].template", g["template"]))
    if "submitterPodTemplate" in spec:
        out.append(("spec.submitterPodTemplate", spec["submitterPodTemplate"]))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest")
    p.add_argument("--k8s", default="1.33", help="Kubernetes version of the pod template schemas")
    a = p.parse_args()
    doc = yaml.safe_load(open(a.manifest))
    errors = []
    if (doc.get("apiVersion"), doc.get("kind")) != ("ray.io/v1", "RayJob"):
        errors.append(f"apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')}: expected ray.io/v1 RayJob")
    schema = strict(json.load(open(HERE / "rayjob.schema.json")))
    validator = jsonschema.Draft7Validator(schema)
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        errors.append(f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
    templates = pod_templates(doc.get("spec") or {})
    if not templates:
        errors.append("no pod templates (spec.rayClusterSpec.headGroupSpec.template is required)")
    for where, template in templates:
        resource = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "check"}, "template": template}
        try:
            kubernetes_validate.validate(resource, a.k8s, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")
    if errors:
        print(f"{a.manifest}: {len(errors)} error(s)", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    print(f"{a.manifest}: valid RayJob ({schema.get('x-adas-source')}); {len(templates)} pod template(s) valid "
          f"core/v1 for Kubernetes {a.k8s} (kubernetes-validate {kubernetes_validate.__version__}, strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
