"""The files of a release register in format 3 (docs/register.md), for the benchmarks that
build GitOps repositories with `git fast-import` instead of thousands of releasectl runs.

register_files(d, repository, project, releases) yields (path, text) for the head and every
bucket below the register directory `d`; `releases` are (number, commit, item, aliases) in
increasing number, `item` the entry as a YAML list item (`- number: …` and its fields
indented), `aliases` names that need no escaping (`main-7`, `v1.2.3`).
"""
import hashlib

ENTRIES_PER_BUCKET = 20
BUCKETS_PER_DIR = 100


def register_files(d, repository, project, releases):
    last = max((r[0] for r in releases), default=0)
    yield (f"{d}/_register.yaml",
           "apiVersion: releasectl.dev/v1alpha2\nkind: ReleaseRegisterHead\n"
           f"repository: {repository}\nproject: {project}\nlast_number: {last}\n")
    buckets, commits, aliases = {}, {}, {}
    for number, commit, item, names in releases:
        buckets.setdefault(number - number % ENTRIES_PER_BUCKET, []).append(item)
        commits.setdefault(commit[:3], []).append(f"{commit} {number}\n")
        for a in names:
            h = hashlib.sha256(a.encode()).hexdigest()
            aliases.setdefault(h[:3], []).append((a.encode(), f"{a} {number}\n"))
    per_dir = ENTRIES_PER_BUCKET * BUCKETS_PER_DIR
    for first, items in buckets.items():
        yield (f"{d}/_entries/{first - first % per_dir}/{first}.yaml", "".join(items))
    for p3, lines in commits.items():
        yield (f"{d}/_commit-index/{p3[:2]}/{p3}", "".join(sorted(lines)))
    for p3, lines in aliases.items():
        yield (f"{d}/_alias-index/{p3[:2]}/{p3}", "".join(line for _, line in sorted(lines)))
