"""The audit's files: one row per judged order (CSV and NDJSON), the bad input (CSV), and the summary's
counts, gathered as rows stream past (nothing here holds every row)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from service.audit.reader import Issue

CSV_COLUMNS = (
    "order",
    "source",
    "date",
    "patient",
    "orderer",
    "modality",
    "procedure",
    "code",
    "applicability",
    "appropriateness",
    "pama_rating",
    "pama_rating_withheld",
    "variants",
    "possible_variants",
    "red_flags",
    "red_flag_evidence",
    "unchecked_red_flags",
    "data_gaps",
    "urgent",
    "alternative",
)


def csv_row(row: Mapping[str, Any]) -> list[str]:
    """A row's CSV cells: lists joined with `;`, each red flag's evidence as `flag=Resource/id`."""
    evidence = [f"{flag['id']}={item['reference']}" for flag in row["redFlags"] for item in flag["evidence"]]
    return [
        row["order"],
        row["source"],
        row["date"],
        row["patient"],
        row["orderer"] or "",
        row["modality"],
        row["procedure"],
        row["code"],
        row["applicability"],
        row["appropriateness"],
        row["pamaRating"] or "",
        row["pamaRatingWithheld"] or "",
        ";".join(row["variants"]),
        ";".join(row["possibleVariants"]),
        ";".join(flag["id"] for flag in row["redFlags"]),
        ";".join(evidence),
        ";".join(row["uncheckedRedFlags"]),
        ";".join(row["dataGaps"]),
        "yes" if row["urgent"] else "no",
        row["alternative"] or "",
    ]


@dataclass(slots=True)
class Tally:
    """Counts for the summary and the plots, added one row at a time."""

    orders: int = 0
    appropriateness: Counter[str] = field(default_factory=Counter)
    by_modality: dict[str, Counter[str]] = field(default_factory=dict)
    by_month: dict[str, Counter[str]] = field(default_factory=dict)
    by_orderer: dict[str, Counter[str]] = field(default_factory=dict)
    missing: Counter[str] = field(default_factory=Counter)  # data gaps and unchecked red flags
    red_flags: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    rating_withheld: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        verdict = row["appropriateness"]
        self.orders += 1
        self.appropriateness[verdict] += 1
        self.by_modality.setdefault(row["modality"], Counter())[verdict] += 1
        self.by_month.setdefault(row["date"][:7], Counter())[verdict] += 1
        self.by_orderer.setdefault(row["orderer"] or "(not recorded)", Counter())[verdict] += 1
        self.missing.update(f"gap:{gap}" for gap in row["dataGaps"])
        self.missing.update(f"unchecked:{flag}" for flag in row["uncheckedRedFlags"])
        self.red_flags.update(flag["id"] for flag in row["redFlags"])
        self.variants.update(row["variants"])
        self.rating_withheld += row["pamaRatingWithheld"] is not None

    def as_json(self) -> dict[str, Any]:
        def table(groups: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
            return {key: dict(sorted(groups[key].items())) for key in sorted(groups)}

        return {
            "judged": self.orders,
            "appropriateness": dict(sorted(self.appropriateness.items())),
            "ratingWithheld": self.rating_withheld,
            "byModality": table(self.by_modality),
            "byMonth": table(self.by_month),
            "byOrderer": table(self.by_orderer),
            "redFlags": dict(self.red_flags.most_common()),
            "variants": dict(self.variants.most_common()),
            "couldNotBeChecked": dict(self.missing.most_common()),
        }


class RowWriter:
    """orders.csv and orders.ndjson in REPORT_DIR, written as rows arrive."""

    def __init__(self, folder: Path) -> None:
        self._csv_file: IO[str] = (folder / "orders.csv").open("w", encoding="utf-8", newline="")
        self._ndjson: IO[str] = (folder / "orders.ndjson").open("w", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(CSV_COLUMNS)
        self.tally = Tally()

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self._csv.writerow(csv_row(row))
            self._ndjson.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
            self.tally.add(row)

    def close(self) -> None:
        self._csv_file.close()
        self._ndjson.close()


def write_issues(path: Path, issues: Iterable[Issue]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "line", "why"))
        for issue in issues:
            writer.writerow((issue.file, issue.line, issue.why))
