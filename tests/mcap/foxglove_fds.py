#!/usr/bin/env python3
"""The Foxglove protobuf descriptor sets adasd embeds, from the official `foxglove-schemas-protobuf`
package (pinned in .ci/run and tests/mcap/ci.sh).

usage: foxglove_fds.py [--write DIR]

Without arguments: checks that firmware-service/record/src/foxglove_*.fds are the package's
descriptor sets, byte for byte (exit 1 if not). With --write DIR: writes them there (to
regenerate after a package update).
"""
import os
import sys

from google.protobuf import descriptor_pb2
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform
from foxglove_schemas_protobuf.SceneUpdate_pb2 import SceneUpdate

CLASSES = {
    "foxglove.CompressedImage": CompressedImage,
    "foxglove.SceneUpdate": SceneUpdate,
    "foxglove.FrameTransform": FrameTransform,
}
EMBEDDED = os.path.join(os.path.dirname(__file__), "../../firmware-service/record/src")


def descriptor_set(cls):
    """The FileDescriptorSet of a class and its dependencies, dependencies first."""
    fds = descriptor_pb2.FileDescriptorSet()
    seen = set()

    def add(fd):
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        fds.file.append(proto)

    add(cls.DESCRIPTOR.file)
    return fds.SerializeToString()


def file_name(schema_name):
    return schema_name.replace(".", "_") + ".fds"


def main():
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        for name, cls in CLASSES.items():
            with open(os.path.join(sys.argv[2], file_name(name)), "wb") as f:
                f.write(descriptor_set(cls))
        return 0
    if len(sys.argv) > 1:
        print(__doc__)
        return 2
    failed = 0
    for name, cls in CLASSES.items():
        with open(os.path.join(EMBEDDED, file_name(name)), "rb") as f:
            same = f.read() == descriptor_set(cls)
        print(f"{'ok' if same else 'DIFFERENT'} {file_name(name)}: {name}")
        failed += not same
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
