"""Loopback ports for one local stack and the chart values that carry them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from harness.local.processes import free_port


@dataclass
class Ports:
    gateway: int = 0
    gateway_admin: int = 0
    gateway_health: int = 0
    ratelimit_grpc: int = 0
    ratelimit_http: int = 0
    ratelimit_debug: int = 0
    redis: int = 0
    model_server: int = 0
    pgvector: int = 0
    embeddings: int = 0
    llama_stack: int = 0

    def fill_free(self) -> Ports:
        """Keep ports the user chose; pick free ones for the rest."""
        chosen = {f.name: getattr(self, f.name) or free_port() for f in fields(self)}
        return Ports(**chosen)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def port_values(p: Ports) -> dict:
    """The rag chart values that put every component on its port (docs/architecture.md rule 1)."""
    return {
        "global": {"models": {"maas": {"url": f"http://127.0.0.1:{p.gateway}/v1"}}},
        "vllm-gpu": {"port": p.model_server},
        "maas-gateway": {
            "envoy": {"port": p.gateway, "adminPort": p.gateway_admin, "healthPort": p.gateway_health},
            "ratelimit": {"grpcPort": p.ratelimit_grpc, "httpPort": p.ratelimit_http, "debugPort": p.ratelimit_debug},
            "redis": {"port": p.redis},
            "upstream": {"port": p.model_server},
        },
        "pgvector": {"port": p.pgvector},
        "embeddings": {"port": p.embeddings},
        "llama-stack": {
            "port": p.llama_stack,
            "auth": {"endpoint": f"http://127.0.0.1:{p.gateway}/auth/validate"},
            "embeddings": {"url": f"http://127.0.0.1:{p.embeddings}/v1"},
            "vectorStore": {"pgvector": {"port": p.pgvector}},
        },
    }
