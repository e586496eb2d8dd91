"""The ``sport verify`` command: re-check a certificate with its method's verifier
(:func:`sport_core.verification.verify_certificate`)."""

from __future__ import annotations

import argparse
import sys


def _cmd_verify(args: argparse.Namespace) -> int:
    from sport_core.verification import VerificationError, verify_certificate

    try:
        summary = verify_certificate(args.certificate, store=args.store, policy=args.policy, replay=args.replay)
    except VerificationError as exc:
        print(f"sport verify: MISMATCH: {exc}", file=sys.stderr)
        return 1
    reachable = [f"B={b:g}: T*={t}, alpha*={a:.6g}" for b, t, a, ok in summary.bounds if ok]
    unreachable = [f"{b:g}" for b, _, _, ok in summary.bounds if not ok]
    if unreachable:
        reachable.append(f"B={', '.join(unreachable)}: not reachable (epsilon > B at every T)")
    extra = f", {summary.episodes} episodes" if summary.episodes is not None else ""
    extra += f", {summary.replayed} episodes replayed" if summary.replayed else ""
    extra += "" if summary.env_checked else ", env description not checked (its plugin is not installed)"
    print(f"{summary.certificate}: OK ({summary.method}{extra}; {'; '.join(reachable)})")
    print(f"    guarantee: {summary.guarantee}")
    if args.replay and not summary.replayed:
        print(f"    note: the {summary.method} verifier replayed no episodes (--replay {args.replay} asked)")
    return 0


def add_verify_command(sub: argparse._SubParsersAction) -> None:
    """Add ``sport verify CERTIFICATE [--store PATH] [--policy PATH] [--replay K]`` to the CLI."""
    p = sub.add_parser(
        "verify",
        help="re-check a certificate against its episodes and weights",
        description="Re-check a certificate with the verifier of its certification method (the built-in scenario "
        "verifier recomputes every number from the episode store and checks the hashes of the store and the base "
        "policy's weights). Exit status 0: all match; 1: a mismatch (named); 2: a missing, corrupt or foreign "
        "file, or a method no installed plugin verifies.",
    )
    p.add_argument("certificate", help="certificate.json")
    p.add_argument("--store", help="the episode store, if it moved (default: the path in the certificate)")
    p.add_argument("--policy", help="the base policy's weights, if they moved (default: the path in the certificate)")
    p.add_argument(
        "--replay",
        type=int,
        default=0,
        metavar="K",
        help="also re-simulate K episodes and compare them with the store (needs the env's plugin)",
    )
    p.set_defaults(func=_cmd_verify)
