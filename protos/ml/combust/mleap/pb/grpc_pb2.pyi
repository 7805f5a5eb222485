from protos.ml.combust.mleap.pb import mleap_pb2 as _mleap_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
