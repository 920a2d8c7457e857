"""`python -m aigc_demo deploy --space owner/name`: put the app on a Hugging Face Space.

The Hub takes plain git files up to 10 MB and no binary files outside LFS/Xet; three of our
weight files are 13-25 MB. `.gitattributes` marks weights and images for LFS/Xet (a `git push`
works), and this command uploads through `huggingface_hub` (HfApi.upload_folder), which sends
large and binary files through Xet by itself. Both send the same files: `plan()` lists them
(app, package, weights, README and docs/, requirements) and leaves out data sets, training runs, tests
and caches; `check()` refuses a plan the Hub would reject.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aigc_demo.settings import PROJECT_ROOT

HUB_PLAIN_LIMIT = 10 * 1024 * 1024  # bytes: larger files must go through LFS/Xet
ALLOW = ["app.py", "README.md", "requirements.txt", ".gitattributes", "aigc_demo/**", "weights/**", "docs/**"]
IGNORE = ["**/__pycache__/**", "**/*.pyc", "**/.DS_Store", "runs/**", "data/**", "**/data/raw/**",
          "tests/**", ".ci/**", ".git/**", "**/*.ckpt", "**/checkpoints/**", "**/optimizer.pt",
          "**/*.tmp", ".gradio/**", "**/.cache/**"]
FORBIDDEN_PARTS = {"runs", "datasets", ".git", "__pycache__", "checkpoints"}
FORBIDDEN_SUFFIXES = {".idx", ".ubyte", ".gz", ".ckpt", ".pt", ".pth", ".pkl", ".pickle"}


@dataclass
class Plan:
    root: Path
    files: list[Path] = field(default_factory=list)  # relative to root

    @property
    def total_bytes(self) -> int:
        return sum((self.root / f).stat().st_size for f in self.files)


def plan(root: Path = PROJECT_ROOT) -> Plan:
    """The files a deploy sends, as HfApi.upload_folder(allow_patterns=ALLOW, ignore_patterns=IGNORE) picks them."""
    from huggingface_hub.utils import filter_repo_objects  # the very filter upload_folder applies

    every = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()]
    return Plan(root, [Path(rel) for rel in filter_repo_objects(every, allow_patterns=ALLOW, ignore_patterns=IGNORE)])


def lfs_patterns(root: Path = PROJECT_ROOT) -> list[str]:
    """The patterns .gitattributes sends through LFS/Xet (filter=lfs)."""
    attributes = root / ".gitattributes"
    if not attributes.exists():
        return []
    patterns = []
    for line in attributes.read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def is_lfs(rel: Path, patterns: list[str]) -> bool:
    """Git's rule for a pattern without a slash: it matches the file name at any depth."""
    text = rel.as_posix()
    return any(fnmatch.fnmatch(rel.name, p) if "/" not in p else fnmatch.fnmatch(text, p.lstrip("/"))
               for p in patterns)


def check(found: Plan) -> list[str]:
    """What the Hub would refuse (or we never want on a Space); empty when the plan is fine."""
    problems = []
    patterns = lfs_patterns(found.root)
    for rel in found.files:
        size = (found.root / rel).stat().st_size
        binary = b"\0" in (found.root / rel).read_bytes()[:8192]
        if set(rel.parts) & FORBIDDEN_PARTS or rel.suffix in FORBIDDEN_SUFFIXES:
            problems.append(f"{rel}: data sets, runs, checkpoints and pickles stay off the Space")
        elif (size >= HUB_PLAIN_LIMIT or binary) and not is_lfs(rel, patterns):
            why = f"{size / 2**20:.1f} MB" if size >= HUB_PLAIN_LIMIT else "binary"
            problems.append(f"{rel}: {why} and not tracked by LFS/Xet in .gitattributes")
    for needed in ("app.py", "README.md", "requirements.txt"):
        if Path(needed) not in found.files:
            problems.append(f"{needed} is missing from the upload")
    return problems


def deploy(space: str, private: bool = False, dry_run: bool = False, token: str | None = None) -> int:
    found = plan()
    problems = check(found)
    print(f"{len(found.files)} files, {found.total_bytes / 2**20:.1f} MB -> https://huggingface.co/spaces/{space}")
    for problem in problems:
        print(f"refused: {problem}", file=sys.stderr)
    if problems:
        return 1
    if dry_run:
        for rel in found.files:
            print(f"  {rel}")
        return 0
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(space, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=space, repo_type="space", folder_path=str(found.root),
                               allow_patterns=ALLOW, ignore_patterns=IGNORE,
                               commit_message="Deploy AIGC Gallery")
    print(f"uploaded: {commit}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--space", required=True, help="owner/name of the Space (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    parser.add_argument("--dry-run", action="store_true", help="list and check the files, upload nothing")
    parser.add_argument("--token", default=None, help="a write token (default: HF_TOKEN or `hf auth login`)")
    args = parser.parse_args(argv)
    from aigc_demo.catalog import validate_repo_id

    try:
        validate_repo_id(args.space)
    except ValueError as err:
        parser.error(str(err))
    return deploy(args.space, private=args.private, dry_run=args.dry_run, token=args.token)
