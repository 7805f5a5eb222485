import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos.rtscore.v1 import frame_pb2 as _frame_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_ECOMMERCE: _ClassVar[Channel]
    CHANNEL_POS: _ClassVar[Channel]
    CHANNEL_ATM: _ClassVar[Channel]
    CHANNEL_MOTO: _ClassVar[Channel]
    CHANNEL_IN_APP: _ClassVar[Channel]

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    ACTION_APPROVE: _ClassVar[Action]
    ACTION_REVIEW: _ClassVar[Action]
    ACTION_DECLINE: _ClassVar[Action]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_ECOMMERCE: Channel
CHANNEL_POS: Channel
CHANNEL_ATM: Channel
CHANNEL_MOTO: Channel
CHANNEL_IN_APP: Channel
ACTION_UNSPECIFIED: Action
ACTION_APPROVE: Action
ACTION_REVIEW: Action
ACTION_DECLINE: Action

class Transaction(_message.Message):
    __slots__ = ("id", "event_time", "amount_minor", "currency", "card_token", "email", "device_id", "ip", "merchant_id", "merchant_category", "country", "channel", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CARD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    event_time: _timestamp_pb2.Timestamp
    amount_minor: int
    currency: str
    card_token: str
    email: str
    device_id: str
    ip: str
    merchant_id: str
    merchant_category: str
    country: str
    channel: Channel
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., card_token: _Optional[str] = ..., email: _Optional[str] = ..., device_id: _Optional[str] = ..., ip: _Optional[str] = ..., merchant_id: _Optional[str] = ..., merchant_category: _Optional[str] = ..., country: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StageTimings(_message.Message):
    __slots__ = ("features_ms", "score_ms", "total_ms", "velocity_ms")
    FEATURES_MS_FIELD_NUMBER: _ClassVar[int]
    SCORE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_MS_FIELD_NUMBER: _ClassVar[int]
    features_ms: float
    score_ms: float
    total_ms: float
    velocity_ms: float
    def __init__(self, features_ms: _Optional[float] = ..., score_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., velocity_ms: _Optional[float] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("transaction_id", "score", "action", "model", "version", "scorer", "timings")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SCORER_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    score: float
    action: Action
    model: str
    version: str
    scorer: str
    timings: StageTimings
    def __init__(self, transaction_id: _Optional[str] = ..., score: _Optional[float] = ..., action: _Optional[_Union[Action, str]] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., scorer: _Optional[str] = ..., timings: _Optional[_Union[StageTimings, _Mapping]] = ...) -> None: ...

class EvaluateBatchRequest(_message.Message):
    __slots__ = ("transactions",)
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ...) -> None: ...

class EvaluateBatchResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class ShadowRecord(_message.Message):
    __slots__ = ("transaction", "features", "decision", "environment", "pool", "sample_key", "decided_at", "spec_name", "spec_sha256")
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_KEY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    SPEC_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_SHA256_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    features: _frame_pb2.Frame
    decision: Decision
    environment: str
    pool: str
    sample_key: str
    decided_at: _timestamp_pb2.Timestamp
    spec_name: str
    spec_sha256: str
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ..., features: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ..., environment: _Optional[str] = ..., pool: _Optional[str] = ..., sample_key: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., spec_name: _Optional[str] = ..., spec_sha256: _Optional[str] = ...) -> None: ...
