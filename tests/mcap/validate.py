#!/usr/bin/env python3
"""Independent check of adasd recordings with the official `mcap` Python package.

usage: validate.py [--truncated] FILE...

For each file: reads it with mcap's reader (summary and all messages; with --truncated a
streaming reader that stops at the first damaged record, as for a recording cut by kill -9 or a
full disk), checks the schemas Foxglove needs (foxglove.CompressedImage in protobuf,
foxglove.ImageAnnotations in JSON), decodes every camera image with the protobuf descriptor
stored in the file itself and checks it is a JPEG, parses every JSON message, and checks that
camera times increase.

The Foxglove views (docs/RECORDING.md): every foxglove.SceneUpdate (/viz/*) and
foxglove.FrameTransform (/tf) message is decoded with the official classes of the
`foxglove-schemas-protobuf` package, must re-encode to the very same bytes (no field misnumbered,
none unknown) and must place its entities in the `vehicle` frame; the descriptor set stored in
the file must be the package's. Every JSON message is validated against the JSON schema of its
channel (`jsonschema`), which for the decoded CAN topics (/can/rx/<Message>, /can/tx/<Message>)
lists every DBC signal. Without those two packages these checks are skipped with a note, except
under CI (CI set), where they are required.

Prints one line per file: `ok FILE frames=N messages=M topics=...`. Exit status 1 on any failure.
"""
import json
import os
import sys

from mcap.reader import make_reader
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.exceptions import McapError

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError:  # protobuf is a dependency of mcap-protobuf-support; be clear if missing
    descriptor_pb2 = None


try:
    import jsonschema
    from foxglove_fds import CLASSES as OFFICIAL, descriptor_set
except ImportError as e:
    if os.environ.get("CI"):
        raise SystemExit(
            f"CI: {e.name} is missing (pip install foxglove-schemas-protobuf==0.4.0 jsonschema==4.26.0)"
        )
    print(f"note: {e.name} not installed: Foxglove schema and JSON schema checks skipped")
    OFFICIAL = None
    jsonschema = None

VEHICLE_FRAME = "vehicle"


def check_foxglove(schema, channel, message):
    """A SceneUpdate/FrameTransform message, decoded with the official class."""
    cls = OFFICIAL[schema.name]
    assert schema.encoding == "protobuf" and channel.message_encoding == "protobuf", channel.topic
    assert schema.data == descriptor_set(cls), f"{channel.topic}: not the official {schema.name} descriptor"
    if schema.name == "foxglove.CompressedImage":
        return
    msg = cls.FromString(message.data)
    assert msg.SerializeToString() == message.data, (
        f"{channel.topic}: {schema.name} does not re-encode to the same bytes (misnumbered or unknown fields)"
    )
    stamp = lambda ts: ts.seconds * 1_000_000_000 + ts.nanos  # noqa: E731
    if schema.name == "foxglove.FrameTransform":
        assert msg.parent_frame_id == VEHICLE_FRAME and msg.child_frame_id, msg
        assert stamp(msg.timestamp) == message.log_time
        q = msg.rotation
        assert abs(q.x**2 + q.y**2 + q.z**2 + q.w**2 - 1) < 1e-9, q
        return
    assert [d.type for d in msg.deletions] == [1], "every update first deletes the topic's entities"
    ids = [e.id for e in msg.entities]
    assert len(ids) == len(set(ids)), f"{channel.topic}: entity ids repeat: {ids}"
    for e in msg.entities:
        assert e.frame_id == VEHICLE_FRAME, e.frame_id
        assert stamp(e.timestamp) == message.log_time
        for p in list(e.cubes) + list(e.spheres) + list(e.arrows):
            c = p.color
            assert 0 <= min(c.r, c.g, c.b, c.a) and max(c.r, c.g, c.b, c.a) <= 1, c


def protobuf_class(schema):
    fds = descriptor_pb2.FileDescriptorSet.FromString(schema.data)
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    desc = pool.FindMessageTypeByName(schema.name)
    return message_factory.GetMessageClass(desc)


def stream_messages(f):
    """(schema, channel, message) in file order from mcap's streaming reader, which yields the
    records of each chunk once it is complete and raises at the first damaged record."""
    schemas, channels = {}, {}
    for record in StreamReader(f, skip_magic=False, validate_crcs=True).records:
        if isinstance(record, Schema):
            schemas[record.id] = record
        elif isinstance(record, Channel):
            channels[record.id] = record
        elif isinstance(record, Message):
            channel = channels[record.channel_id]
            yield schemas.get(channel.schema_id), channel, record


def check(path, truncated):
    counts = {}
    camera_times = []
    classes = {}
    validators = {}
    with open(path, "rb") as f:
        if truncated:
            reader = None
        else:
            reader = make_reader(f, validate_crcs=True)
            summary = reader.get_summary()
            assert summary is not None, "no summary section"
            metas = [m.name for m in reader.iter_metadata()]
            assert "adas" in metas, f"no adas metadata record ({metas})"
        it = reader.iter_messages() if reader else stream_messages(f)
        while True:
            try:
                schema, channel, message = next(it)
            except StopIteration:
                break
            except (McapError, EOFError, ValueError, Exception) as e:  # noqa: BLE001
                if not truncated:
                    raise
                print(f"   stream ends: {type(e).__name__}: {e}")
                break
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            if OFFICIAL is not None and schema.name in OFFICIAL:
                check_foxglove(schema, channel, message)
            if channel.topic.startswith(("/viz/", "/tf")):
                assert schema.name in ("foxglove.SceneUpdate", "foxglove.FrameTransform"), schema.name
            elif channel.topic == "/camera/image":
                assert schema.name == "foxglove.CompressedImage", schema.name
                assert schema.encoding == "protobuf" and channel.message_encoding == "protobuf"
                if descriptor_pb2 is not None:
                    cls = classes.get(schema.id) or classes.setdefault(schema.id, protobuf_class(schema))
                    img = cls.FromString(message.data)
                    assert img.format == "jpeg", img.format
                    assert img.data[:2] == b"\xff\xd8", "camera data is not a JPEG"
                    t = img.timestamp.seconds * 1_000_000_000 + img.timestamp.nanos
                    assert t == message.log_time, (t, message.log_time)
                camera_times.append(message.log_time)
            else:
                assert channel.message_encoding == "json", channel.message_encoding
                assert schema.encoding == "jsonschema", schema.encoding
                obj = json.loads(message.data)
                if jsonschema is not None:
                    validator = validators.get(schema.id)
                    if validator is None:
                        validator = validators.setdefault(
                            schema.id, jsonschema.Draft202012Validator(json.loads(schema.data))
                        )
                    validator.validate(obj)
                else:
                    json.loads(schema.data)
                if channel.topic.startswith(("/can/rx/", "/can/tx/")):
                    name = channel.topic.split("/")[3]
                    assert schema.name == f"adas.can.{name}", (channel.topic, schema.name)
                    assert "labels" in obj, channel.topic
                if channel.topic == "/camera/annotations":
                    assert schema.name == "foxglove.ImageAnnotations"
                    assert set(obj) >= {"circles", "points", "texts"}
                if channel.topic == "/adas/decision":
                    assert obj["decision"]["stage"] in ("none", "fcw", "partial_brake", "full_brake")
    assert camera_times == sorted(camera_times), "camera times out of order"
    frames = max(counts.get("/camera/image", 0), counts.get("/adas/decision", 0))
    assert frames > 0, f"no frames ({counts})"
    topics = ",".join(f"{k}:{v}" for k, v in sorted(counts.items()))
    print(f"ok {path} frames={frames} messages={sum(counts.values())} topics={topics}")


def main():
    args = sys.argv[1:]
    truncated = "--truncated" in args
    files = [a for a in args if a != "--truncated"]
    if not files:
        print(__doc__)
        return 2
    failed = 0
    for p in files:
        try:
            check(p, truncated)
        except Exception as e:  # noqa: BLE001
            print(f"FAIL {p}: {type(e).__name__}: {e}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
