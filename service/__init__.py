"""lbp-imaging-cds: a CDS Hooks service that rates lumbar-spine imaging orders (ACR low back pain)."""

from service.app import create_app

__all__ = ["create_app"]
