"""Fetch what prefetch lacks from the EHR's FHIR server: in parallel, on a deadline, from trusted servers."""

from service.fetch.gatherer import GatherResult, PrefetchGatherer
from service.fetch.templates import fill_template
from service.fetch.trust import normalise_server_url, trusted_server

__all__ = ["GatherResult", "PrefetchGatherer", "fill_template", "normalise_server_url", "trusted_server"]
