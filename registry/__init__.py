"""rtscore's registry: model governance over gRPC (rtscore.v1.Registry) and Postgres.

Entry points: `registry.server.running_registry(settings)` (composition root),
`registry.client.RegistryClient` (blocking client), `registry.access.create_token`,
`registry.db.open_pool` / `migrate`, and the `rtscore registry …` commands.
"""
