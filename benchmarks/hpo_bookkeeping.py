"""HPO bookkeeping throughput: the hpo-controller vs plain Optuna RDBStorage, same PostgreSQL, side by side.

    .venv/bin/python -m benchmarks.hpo_bookkeeping [--trials 1000] [--workers 8]

Both sides run `--trials` trials of a trivial objective over the stage-0 search space with
`--workers` concurrent worker processes and multivariate TPE with constant liar:
- reference: each worker runs `optuna.load_study(storage=RDBStorage(url)).optimize(...)`;
- ehrlab: each worker loops Ask(n=1) -> objective -> Tell against an hpo-controller process (gRPC),
  which keeps studies in memory, group-commits writes and samples concurrent asks as one batch.
Reported: trials per second (wall time from the first worker start to the last worker's end), the
ratio, and duplicate parameter sets (must be 0).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from benchmarks.harness import load, machine

SPACE = {
    "lr": {"type": "float", "low": 1e-6, "high": 5e-5, "log": True},
    "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "batch_size": {"type": "categorical", "choices": [8, 16, 32]},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
    "dropout": {"type": "float", "low": 0.0, "high": 0.3},
}


def objective_value(params: dict) -> float:
    return params["lr"] * 1e4 + params["dropout"] + params["warmup_ratio"] / params["batch_size"]


def _optuna_objective(trial: optuna.Trial) -> float:
    from ehrlab.hpo.space import SearchSpace

    return objective_value(SearchSpace.parse(SPACE).suggest(trial))


def _reference_worker(url: str, name: str, n: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True)
    study = optuna.load_study(study_name=name, storage=url, sampler=sampler)
    study.optimize(_optuna_objective, n_trials=n)


def _ehrlab_worker(address: str, name: str, n: int) -> None:
    from ehrlab.core.channels import open_channel
    from ehrlab.hpo.api import from_struct
    from ehrlab.v1 import hpo_pb2, hpo_pb2_grpc

    stub = hpo_pb2_grpc.HpoControllerStub(open_channel(address))
    for _ in range(n):
        (trial,) = stub.Ask(hpo_pb2.AskRequest(study=name, n=1), timeout=60).trials
        value = objective_value(from_struct(trial.params))
        stub.Tell(hpo_pb2.TellRequest(study=name, trial=trial.number, state=hpo_pb2.TRIAL_STATE_COMPLETE,
                                      value=value), timeout=60)


def _run_workers(target: object, args: tuple, workers: int, trials: int) -> float:
    context = multiprocessing.get_context("spawn")
    per_worker = [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]
    processes = [context.Process(target=target, args=(*args, n)) for n in per_worker]
    start = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"a worker failed (exit code {process.exitcode})")
    return time.perf_counter() - start


def _duplicates(url: str, name: str) -> tuple[int, int]:
    study = optuna.load_study(study_name=name, storage=url)
    keys = [tuple(sorted(t.params.items())) for t in study.trials]
    return len(keys), len(keys) - len(set(keys))


def _start_service(database_url: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "EHRLAB_DATABASE_URL": database_url, "EHRLAB_CONTROLLER_ADDR": "127.0.0.1:1"}
    process = subprocess.Popen([sys.executable, "-m", "ehrlab.services.hpo_controller", "--port", "0",
                                "--metrics-port", "0", "--log-level", "WARNING"], env=env, stdout=subprocess.PIPE,
                               text=True)
    for line in process.stdout:  # type: ignore[union-attr]
        if line.startswith("EHRLAB_READY"):
            port = dict(part.split("=") for part in line.split()[2:])["grpc"]
            return process, f"127.0.0.1:{port}"
    raise RuntimeError("the hpo-controller did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    from ehrlab.core.channels import open_channel
    from ehrlab.core.embedded.postgres import EmbeddedPostgres
    from ehrlab.hpo.api import definition_to_request
    from ehrlab.hpo.storage import ensure_tables, optuna_url
    from ehrlab.hpo.studies import parse_definition
    from ehrlab.v1 import hpo_pb2_grpc

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as home:
        postgres = EmbeddedPostgres(Path(home) / "pg")
        database_url = postgres.start()
        url = optuna_url(database_url)
        ensure_tables(database_url)
        service = None
        try:
            optuna.create_study(study_name="reference", storage=url, direction="minimize")
            reference_s = _run_workers(_reference_worker, (url, "reference"), args.workers, args.trials)

            service, address = _start_service(database_url)
            stub = hpo_pb2_grpc.HpoControllerStub(open_channel(address))
            stub.CreateStudy(definition_to_request(parse_definition({
                "name": "ehrlab", "metric": "value", "direction": "minimize", "space": SPACE,
                "n_trials": args.trials, "sampler": {"name": "tpe", "multivariate": True, "constant_liar": True}})))
            ehrlab_s = _run_workers(_ehrlab_worker, (address, "ehrlab"), args.workers, args.trials)

            ref_n, ref_dup = _duplicates(url, "reference")
            ours_n, ours_dup = _duplicates(url, "ehrlab")
        finally:
            if service is not None:
                service.terminate()
                service.wait(30)
            postgres.destroy()
    ref_rate, our_rate = args.trials / reference_s, args.trials / ehrlab_s
    print(f"trials={args.trials} workers={args.workers} (PostgreSQL on loopback, TPE multivariate + constant liar)")
    print(f"plain Optuna RDBStorage: {reference_s:7.1f} s  {ref_rate:7.1f} trials/s  "
          f"{ref_n} trials, {ref_dup} duplicate parameter sets")
    print(f"ehrlab hpo-controller:   {ehrlab_s:7.1f} s  {our_rate:7.1f} trials/s  "
          f"{ours_n} trials, {ours_dup} duplicate parameter sets")
    print(f"speed-up: {our_rate / ref_rate:.1f}x  (load average after: {load():.2f})")


if __name__ == "__main__":
    main()
