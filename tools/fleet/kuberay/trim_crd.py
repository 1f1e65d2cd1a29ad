#!/usr/bin/env python3
"""The RayJob CRD's schema, trimmed for tools/fleet/kuberay/validate.py.

    trim_crd.py KUBERAY/ray-operator/config/crd/bases/ray.io_rayjobs.yaml KUBERAY_TAG > rayjob.schema.json

KubeRay's CRD (1.4 MB of YAML) embeds Kubernetes' own PodTemplateSpec schema in every pod
template. Those templates are replaced here by a marker, and validate.py checks each of them
against Kubernetes' official schemas instead (kubernetes-validate); everything of the RayJob
itself — entrypoint, rayClusterSpec, groups, rayStartParams, … — keeps the CRD's schema. The
result is committed (the CRD is Apache-2.0, KubeRay's), regenerated when KubeRay is upgraded.
"""

import json
import sys

import yaml

TEMPLATE = {"type": "object", "x-adas-validated-as": "core/v1 PodTemplateSpec (validate.py)"}


def trim(schema):
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                is_pod_template = (
                    isinstance(sub, dict) and set(sub.get("properties", {})) >= {"metadata", "spec"}
                    and name in ("template", "submitterPodTemplate")
                )
                props[name] = TEMPLATE if is_pod_template else trim(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                schema[key] = trim(schema[key])
    return schema


def main() -> int:
    crd = yaml.safe_load(open(sys.argv[1]))
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema = trim(version["schema"]["openAPIV3Schema"])
    schema["x-adas-source"] = (
        f"KubeRay {sys.argv[2]} CRD {crd['metadata']['name']} {version['name']} "
        f"(controller-gen {crd['metadata'].get('annotations', {}).get('controller-gen.kubebuilder.io/version', '?')})"
    )
    json.dump(schema, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
