from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterHeader(_message.Message):
    __slots__ = ("name", "sha256", "size", "canary_frame_json", "canary_expected_json", "metrics", "tags", "reason")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CANARY_FRAME_JSON_FIELD_NUMBER: _ClassVar[int]
    CANARY_EXPECTED_JSON_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    size: int
    canary_frame_json: str
    canary_expected_json: str
    metrics: _containers.ScalarMap[str, float]
    tags: _containers.ScalarMap[str, str]
    reason: str
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., canary_frame_json: _Optional[str] = ..., canary_expected_json: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., tags: _Optional[_Mapping[str, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class RegisterChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: RegisterHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[RegisterHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("name", "version", "sha256", "size", "input_schema_json", "output_schema_json", "bundle_name", "bundle_format", "mleap_version", "canary_frame_json", "canary_expected_json", "metrics", "tags", "author", "created_at", "created")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_NAME_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MLEAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANARY_FRAME_JSON_FIELD_NUMBER: _ClassVar[int]
    CANARY_EXPECTED_JSON_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    sha256: str
    size: int
    input_schema_json: str
    output_schema_json: str
    bundle_name: str
    bundle_format: str
    mleap_version: str
    canary_frame_json: str
    canary_expected_json: str
    metrics: _containers.ScalarMap[str, float]
    tags: _containers.ScalarMap[str, str]
    author: str
    created_at: str
    created: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., input_schema_json: _Optional[str] = ..., output_schema_json: _Optional[str] = ..., bundle_name: _Optional[str] = ..., bundle_format: _Optional[str] = ..., mleap_version: _Optional[str] = ..., canary_frame_json: _Optional[str] = ..., canary_expected_json: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., tags: _Optional[_Mapping[str, str]] = ..., author: _Optional[str] = ..., created_at: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class VersionRef(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("name", "tags", "environment", "limit")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    tags: _containers.ScalarMap[str, str]
    environment: str
    limit: int
    def __init__(self, name: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., environment: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[Version]
    def __init__(self, versions: _Optional[_Iterable[_Union[Version, _Mapping]]] = ...) -> None: ...

class BundleChunk(_message.Message):
    __slots__ = ("data", "size", "sha256")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    size: int
    sha256: str
    def __init__(self, data: _Optional[bytes] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class DeployRequest(_message.Message):
    __slots__ = ("name", "version", "environment", "pool", "role", "reason", "traffic_share")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SHARE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    environment: str
    pool: str
    role: str
    reason: str
    traffic_share: float
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., environment: _Optional[str] = ..., pool: _Optional[str] = ..., role: _Optional[str] = ..., reason: _Optional[str] = ..., traffic_share: _Optional[float] = ...) -> None: ...

class ChangeRequest(_message.Message):
    __slots__ = ("name", "version", "environment", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    environment: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., environment: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("name", "environment", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("name", "version", "environment", "pool", "role", "traffic_share", "sha256", "revision", "updated_at", "updated_by", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SHARE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    environment: str
    pool: str
    role: str
    traffic_share: float
    sha256: str
    revision: int
    updated_at: str
    updated_by: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., environment: _Optional[str] = ..., pool: _Optional[str] = ..., role: _Optional[str] = ..., traffic_share: _Optional[float] = ..., sha256: _Optional[str] = ..., revision: _Optional[int] = ..., updated_at: _Optional[str] = ..., updated_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EvaluationRequest(_message.Message):
    __slots__ = ("name", "candidate_version", "champion_version", "environment", "sample_size", "agreement", "score_distance", "candidate_latency_p99_ms", "champion_latency_p99_ms", "notes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    candidate_version: int
    champion_version: int
    environment: str
    sample_size: int
    agreement: float
    score_distance: float
    candidate_latency_p99_ms: float
    champion_latency_p99_ms: float
    notes: str
    def __init__(self, name: _Optional[str] = ..., candidate_version: _Optional[int] = ..., champion_version: _Optional[int] = ..., environment: _Optional[str] = ..., sample_size: _Optional[int] = ..., agreement: _Optional[float] = ..., score_distance: _Optional[float] = ..., candidate_latency_p99_ms: _Optional[float] = ..., champion_latency_p99_ms: _Optional[float] = ..., notes: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("id", "name", "candidate_version", "champion_version", "environment", "sample_size", "agreement", "score_distance", "candidate_latency_p99_ms", "champion_latency_p99_ms", "passed", "verdict", "recorded_by", "recorded_at", "notes")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BY_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    candidate_version: int
    champion_version: int
    environment: str
    sample_size: int
    agreement: float
    score_distance: float
    candidate_latency_p99_ms: float
    champion_latency_p99_ms: float
    passed: bool
    verdict: str
    recorded_by: str
    recorded_at: str
    notes: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., candidate_version: _Optional[int] = ..., champion_version: _Optional[int] = ..., environment: _Optional[str] = ..., sample_size: _Optional[int] = ..., agreement: _Optional[float] = ..., score_distance: _Optional[float] = ..., candidate_latency_p99_ms: _Optional[float] = ..., champion_latency_p99_ms: _Optional[float] = ..., passed: _Optional[bool] = ..., verdict: _Optional[str] = ..., recorded_by: _Optional[str] = ..., recorded_at: _Optional[str] = ..., notes: _Optional[str] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("name", "candidate_version", "environment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    candidate_version: int
    environment: str
    def __init__(self, name: _Optional[str] = ..., candidate_version: _Optional[int] = ..., environment: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("name", "version", "environment", "actor", "since", "until", "limit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    environment: str
    actor: str
    since: str
    until: str
    limit: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., environment: _Optional[str] = ..., actor: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "at", "actor", "action", "name", "version", "environment", "pool", "reason", "before_json", "after_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BEFORE_JSON_FIELD_NUMBER: _ClassVar[int]
    AFTER_JSON_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: str
    actor: str
    action: str
    name: str
    version: int
    environment: str
    pool: str
    reason: str
    before_json: str
    after_json: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[str] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., environment: _Optional[str] = ..., pool: _Optional[str] = ..., reason: _Optional[str] = ..., before_json: _Optional[str] = ..., after_json: _Optional[str] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class WatchDeploymentsRequest(_message.Message):
    __slots__ = ("environment", "pool", "since_revision")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    environment: str
    pool: str
    since_revision: int
    def __init__(self, environment: _Optional[str] = ..., pool: _Optional[str] = ..., since_revision: _Optional[int] = ...) -> None: ...

class DesiredState(_message.Message):
    __slots__ = ("environment", "pool", "revision", "deployments")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    environment: str
    pool: str
    revision: int
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    def __init__(self, environment: _Optional[str] = ..., pool: _Optional[str] = ..., revision: _Optional[int] = ..., deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ...) -> None: ...

class HostedVersion(_message.Message):
    __slots__ = ("name", "version", "sha256", "roles", "health", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    sha256: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    health: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., sha256: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., health: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("environment", "pool", "endpoint", "ttl_seconds", "hosted", "refused", "health", "leave")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOSTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    LEAVE_FIELD_NUMBER: _ClassVar[int]
    environment: str
    pool: str
    endpoint: str
    ttl_seconds: float
    hosted: _containers.RepeatedCompositeFieldContainer[HostedVersion]
    refused: _containers.RepeatedCompositeFieldContainer[HostedVersion]
    health: str
    leave: bool
    def __init__(self, environment: _Optional[str] = ..., pool: _Optional[str] = ..., endpoint: _Optional[str] = ..., ttl_seconds: _Optional[float] = ..., hosted: _Optional[_Iterable[_Union[HostedVersion, _Mapping]]] = ..., refused: _Optional[_Iterable[_Union[HostedVersion, _Mapping]]] = ..., health: _Optional[str] = ..., leave: _Optional[bool] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("expires_at",)
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    expires_at: str
    def __init__(self, expires_at: _Optional[str] = ...) -> None: ...

class WatchMembersRequest(_message.Message):
    __slots__ = ("environment", "pool")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    environment: str
    pool: str
    def __init__(self, environment: _Optional[str] = ..., pool: _Optional[str] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("endpoint", "health", "hosted", "refused", "expires_at")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HOSTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    health: str
    hosted: _containers.RepeatedCompositeFieldContainer[HostedVersion]
    refused: _containers.RepeatedCompositeFieldContainer[HostedVersion]
    expires_at: str
    def __init__(self, endpoint: _Optional[str] = ..., health: _Optional[str] = ..., hosted: _Optional[_Iterable[_Union[HostedVersion, _Mapping]]] = ..., refused: _Optional[_Iterable[_Union[HostedVersion, _Mapping]]] = ..., expires_at: _Optional[str] = ...) -> None: ...

class Membership(_message.Message):
    __slots__ = ("environment", "pool", "endpoints", "members")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    environment: str
    pool: str
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, environment: _Optional[str] = ..., pool: _Optional[str] = ..., endpoints: _Optional[_Iterable[str]] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...
