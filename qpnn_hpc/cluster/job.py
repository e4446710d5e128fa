"""The callable that ``qpnn-hpc submit`` sends to the batch system (pickled by submitit).

Every MPI rank of the job calls it (``srun`` starts the ranks; each loads the pickle).
It is a :class:`submitit.helpers.Checkpointable`: on the preemption / time-limit signal
submitit calls :meth:`CampaignJob.checkpoint` on rank 0, saves what it returns and
requeues the job. The checkpoint is the callable itself, unchanged: all progress is in
the HDF5 results file (rows done and complete, or pending), which the rerun resumes.
"""
from __future__ import annotations

from typing import Optional

import submitit


class CampaignJob(submitit.helpers.Checkpointable):
    """Run (or resume) a campaign, or shard ``(k, K)`` of it, into ``out``; then, if
    ``report`` names a folder and every task is done, its report. A pipeline ``stage`` with
    failed tasks ends failed, so that Slurm's afterok holds the stages after it."""

    def __init__(self, campaign: str, out: str, batch: Optional[int] = None, device: str = "auto", writer: str = "auto",
                 shard: Optional[tuple[int, int]] = None, report: Optional[str] = None, stage: bool = False):
        self.campaign, self.out, self.batch, self.device, self.writer = campaign, out, batch, device, writer
        self.shard, self.report, self.stage = shard, report, stage

    def __call__(self) -> dict:
        from qpnn_hpc.campaigns import files
        from qpnn_hpc.campaigns.engine import run_campaign
        from qpnn_hpc.campaigns.shards import shard_tasks
        tasks = None
        if self.shard is not None:
            tasks = shard_tasks(files.load(self.campaign), *self.shard)
        counts = run_campaign(self.campaign, self.out, batch=self.batch, device=self.device, writer=self.writer,
                              tasks=tasks)
        if self.report and counts and not counts.get("pending") and not counts.get("failed"):  # rank 0, all done
            from qpnn_hpc.cluster.pipeline import Stage, report
            report(Stage("job", self.campaign, self.out, report=self.report))
        if self.stage and counts.get("failed"):  # a pipeline's next stage must not start (afterok)
            raise RuntimeError(f"{counts['failed']} task(s) of {self.campaign} failed; `qpnn-hpc status {self.out}`")
        return counts

    def checkpoint(self, *args, **kwargs):
        print(f"[qpnn-hpc] preemption/time-limit signal: requeueing; the rerun resumes {self.out}", flush=True)
        return super().checkpoint(*args, **kwargs)

    def __repr__(self) -> str:
        shard = f", shard {self.shard[0]} of {self.shard[1]}" if self.shard else ""
        return f"CampaignJob({self.campaign} -> {self.out}{shard})"
