"""Stage `proxies`: the proxies-versus-memorization table and figure."""

from __future__ import annotations

from dataclasses import dataclass

from mudiff.analysis.proxies import proxy_table
from mudiff.io import atomic_path, read_json, read_table, write_table
from mudiff.options import build
from mudiff.report.proxies import proxies_figure
from mudiff.tracking import job_run


@dataclass
class Params:
    top_share: float = 0.05  # SPEC: agreement with memorization over all samples and its top 5%


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    with job_run(job) as mlrun:
        scores = read_table(inp["scores"])
        if "memorization" not in scores.columns:
            raise ValueError("the proxies study needs memorization in the scores table (scores.names)")
        timings = read_json(inp["timings"])
        table = proxy_table(scores, timings["seconds"], timings["bank_seconds"], p.top_share)
        write_table(table, out["table"])
        with atomic_path(out["csv"]) as tmp:
            table.to_csv(tmp, index=False)
        proxies_figure(table, out["figure"], p.top_share, timings["bank_seconds"])
        mlrun.log_metrics(
            {
                f"{col}.{r['score']}": r[col]
                for r in table.to_dict("records")
                for col in (
                    "spearman",
                    "pearson",
                    "spearman_top",
                    "pearson_top",
                    "seconds",
                    "time_ratio_to_bank",
                )
                if r[col] == r[col]
            }
        )
        print(table.to_string(index=False))
