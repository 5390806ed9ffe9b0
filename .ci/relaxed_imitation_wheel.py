#!/usr/bin/env python3
"""
Rebuild PyPI's ``imitation`` 1.0.1 wheel with install requirements that admit the current stack.

imitation 1.0.1, its latest release, declares ``stable-baselines3~=2.2.1``, ``gymnasium~=0.29`` and
``huggingface-sb3~=3.0`` (whose ``huggingface-hub~=0.8`` today's ``datasets`` cannot share). Its code
runs on SB3 2.9 / gymnasium 1.x, so this script repacks the very same wheel (code byte for byte,
checked against a pinned sha256) with only those three requirements changed, under the local
version ``1.0.1+sb3llmae.1``. pip then resolves, installs and ``pip check``s it like any package::

    python .ci/relaxed_imitation_wheel.py dist
    pip install --find-links dist sb3-llmae

Standard library only (it runs before any venv exists); ``pip download`` fetches the original.
The output is byte-for-byte reproducible: same input, same wheel.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

NAME = "imitation"
UPSTREAM_VERSION = "1.0.1"
UPSTREAM_SHA256 = "b2024f479c0871000a9abf07c09669143332cd66b67b20c13683ff9b80e075b3"
# Bump the number after "sb3llmae." whenever RELAXED_REQUIREMENTS changes.
VERSION = f"{UPSTREAM_VERSION}+sb3llmae.1"
WHEEL_NAME = f"{NAME}-{VERSION}-py3-none-any.whl"
# Upstream requirement -> its replacement; every other requirement is kept as imitation declares it.
RELAXED_REQUIREMENTS = {
    "gymnasium[classic-control]~=0.29": "gymnasium[classic-control]<2,>=0.29",
    "stable-baselines3~=2.2.1": "stable-baselines3<3,>=2.2.1",
    # the same `huggingface_sb3` module, published under this name since 3.1 (rl-zoo3 depends on it)
    "huggingface-sb3~=3.0": "sb3-team-hf-integration<4,>=3.0",
}


def record_hash(data: bytes) -> str:
    """:return: a RECORD entry's hash field (PEP 376 / the wheel spec: urlsafe base64, no padding)"""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def relax_metadata(metadata: str) -> str:
    """
    :param metadata: imitation 1.0.1's ``METADATA``
    :return: the same with the new version and the relaxed requirements
    :raises ValueError: when the input is not the metadata this script was written for
    """
    lines = metadata.split("\n")
    replaced = set()
    for index, line in enumerate(lines):
        if line == f"Version: {UPSTREAM_VERSION}":
            lines[index] = f"Version: {VERSION}"
            replaced.add("Version")
        elif (
            line.startswith("Requires-Dist: ")
            and line.removeprefix("Requires-Dist: ") in RELAXED_REQUIREMENTS
        ):
            requirement = line.removeprefix("Requires-Dist: ")
            lines[index] = f"Requires-Dist: {RELAXED_REQUIREMENTS[requirement]}"
            replaced.add(requirement)
    missing = {"Version", *RELAXED_REQUIREMENTS} - replaced
    if missing:
        raise ValueError(f"not imitation {UPSTREAM_VERSION}'s METADATA: no line for {sorted(missing)}")
    return "\n".join(lines)


def relax_wheel(source: Path, out_dir: Path) -> Path:
    """
    Write the relaxed wheel: the source's files unchanged, its ``.dist-info`` renamed to the new version,
    ``METADATA`` relaxed and ``RECORD`` rewritten to match.

    :param source: imitation 1.0.1's wheel
    :param out_dir: folder for the new wheel (created if missing)
    :return: the new wheel's path
    """
    old_info = f"{NAME}-{UPSTREAM_VERSION}.dist-info/"
    new_info = f"{NAME}-{VERSION}.dist-info/"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / WHEEL_NAME
    partial = target.with_name(target.name + ".partial")
    records = []
    with (
        zipfile.ZipFile(source) as wheel_in,
        zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as wheel_out,
    ):
        for info in wheel_in.infolist():
            if info.filename == old_info + "RECORD":
                continue
            data = wheel_in.read(info)
            name = info.filename
            if name.startswith(old_info):
                name = new_info + name.removeprefix(old_info)
                if name == new_info + "METADATA":
                    data = relax_metadata(data.decode()).encode()
            # the original timestamps and permissions: the same input gives the same bytes
            entry = zipfile.ZipInfo(name, date_time=info.date_time)
            entry.external_attr = info.external_attr
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel_out.writestr(entry, data)
            records.append(f"{name},{record_hash(data)},{len(data)}")
        records.append(f"{new_info}RECORD,,")
        record_info = zipfile.ZipInfo(
            new_info + "RECORD", date_time=wheel_in.getinfo(old_info + "RECORD").date_time
        )
        record_info.compress_type = zipfile.ZIP_DEFLATED
        wheel_out.writestr(record_info, "\n".join(records) + "\n")
    partial.replace(target)
    return target


def download_upstream(folder: Path) -> Path:
    """
    :param folder: where pip saves the wheel
    :return: imitation 1.0.1's wheel from the package index, its sha256 checked
    :raises SystemExit: when the download fails or its hash differs from the pinned one
    """
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    command += ["--dest", str(folder), f"{NAME}=={UPSTREAM_VERSION}"]
    if subprocess.run(command, check=False).returncode != 0:
        raise SystemExit(f"error: `{' '.join(command)}` failed")
    (wheel,) = folder.glob(f"{NAME}-{UPSTREAM_VERSION}-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != UPSTREAM_SHA256:
        raise SystemExit(f"error: {wheel.name} has sha256 {digest}, expected {UPSTREAM_SHA256}")
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path, help="folder for the wheel (pip's --find-links)")
    parser.add_argument(
        "--source", type=Path, help="imitation 1.0.1's wheel, already downloaded (default: pip download it)"
    )
    args = parser.parse_args(argv)
    target = args.out_dir / WHEEL_NAME
    if target.exists() and args.source is None:
        print(target)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        source = args.source or download_upstream(Path(folder))
        print(relax_wheel(source, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
