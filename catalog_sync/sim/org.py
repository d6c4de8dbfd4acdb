"""Organisations for the simulators: load a YAML file, generate a big one, or a small demo one."""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import yaml

API_VERSION = "backstage.io/v1alpha1"


def load_entities(path: str | Path) -> list[dict[str, Any]]:
    """The documents of a multi-document YAML file (empty documents skipped)."""
    with open(path, encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def dump_entities(entities: list[dict[str, Any]], path: str | Path) -> None:
    """Write entities as one multi-document YAML file (what the real catalog reads)."""
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump_all(entities, fh, sort_keys=False, allow_unicode=True)


def _user_name(i: int) -> str:
    if i % 997 == 7:
        return f"Mixed.Case-User-{i:05d}"
    return f"user-{i:05d}"


def generated_org(n_users: int, n_groups: int, seed: int = 42) -> list[dict[str, Any]]:
    """The org `start-backstage.sh` generates (its gen-catalog.py), as dicts, document for document.

    Same random call sequence as the real generator, so the same seed gives the same org: a group
    tree rooted at `group-0000` (every other group has `spec.parent` and is listed in its parent's
    `spec.children`), users `user-NNNNN` in 1-3 groups (~20 % two, ~5 % three), up to 3 users per
    group repeated in `spec.members`, and `Mixed.Case-User-NNNNN` for `i % 997 == 7`.
    Groups come first, then users.
    """
    if n_groups < 1:
        raise ValueError("n_groups must be at least 1")
    gc_was_enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of small dicts: the cyclic GC only slows this down
    try:
        return _generate(n_users, n_groups, seed)
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(n_users: int, n_groups: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    groups = [f"group-{i:04d}" for i in range(n_groups)]
    parent: dict[str, str | None] = {groups[0]: None}
    children: dict[str, list[str]] = {g: [] for g in groups}
    for i, g in enumerate(groups[1:], start=1):
        p = groups[rnd.randrange(0, i)] if i < 8 else groups[rnd.randrange(0, max(1, i // 2))]
        parent[g] = p
        children[p].append(g)

    members: dict[str, list[str]] = {g: [] for g in groups}
    pool = groups[1:] if n_groups > 1 else groups
    k_max = max(1, n_groups - 1)
    users: list[dict[str, Any]] = []
    for i in range(n_users):
        name = _user_name(i)
        k = 1
        r = rnd.random()
        if r < 0.20:
            k = 2
        elif r < 0.25:
            k = 3
        mg = rnd.sample(pool, min(k, k_max))
        first = members[mg[0]]
        if len(first) < 3:
            first.append(name)
        users.append(
            {
                "apiVersion": API_VERSION,
                "kind": "User",
                "metadata": {"name": name, "annotations": {"example.com/employee-id": f"E{i:06d}"}},
                "spec": {
                    "profile": {"displayName": f"User {i:05d}", "email": f"{name.lower()}@example.com"},
                    "memberOf": mg,
                },
            }
        )
    docs: list[dict[str, Any]] = []
    for g in groups:
        t = "organization" if parent[g] is None else ("department" if parent[g] == groups[0] else "team")
        spec: dict[str, Any] = {
            "type": t,
            "profile": {"displayName": f"Group {g[6:]}", "email": f"{g}@example.com"},
        }
        if parent[g]:
            spec["parent"] = parent[g]
        spec["children"] = list(children[g])
        if members[g]:
            spec["members"] = list(members[g])
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Group",
                "metadata": {"name": g, "description": f"Generated {t} {g}"},
                "spec": spec,
            }
        )
    return docs + users


def _group(
    name: str,
    display: str,
    gtype: str,
    parent: str | None = None,
    children: tuple[str, ...] = (),
    members: tuple[str, ...] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": gtype,
        "profile": {"displayName": display, "email": f"{name}@example.com"},
    }
    if parent:
        spec["parent"] = parent
    spec["children"] = list(children)
    if members:
        spec["members"] = list(members)
    return {
        "apiVersion": API_VERSION,
        "kind": "Group",
        "metadata": {"name": name, "description": display},
        "spec": spec,
    }


def _person(name: str, display: str, groups: list[str], email: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "User",
        "metadata": {"name": name},
        "spec": {
            "profile": {"displayName": display, "email": email or f"{name.lower()}@example.com"},
            "memberOf": groups,
        },
    }


_DEMO_PEOPLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # name, display name, direct groups
    ("ada.lovelace", "Ada Lovelace", ("engineering",)),
    ("grace.hopper", "Grace Hopper", ("engineering", "llm-admins")),
    ("alan.turing", "Alan Turing", ("ml-research",)),
    ("katherine.johnson", "Katherine Johnson", ("ml-research",)),
    ("geoffrey.hinton", "Geoffrey Hinton", ("ml-research", "data-science")),
    ("yoshua.bengio", "Yoshua Bengio", ("ml-research",)),
    ("fei-fei.li", "Fei-Fei Li", ("ml-research",)),
    ("linus.torvalds", "Linus Torvalds", ("platform",)),
    ("margaret.hamilton", "Margaret Hamilton", ("platform", "llm-admins")),
    ("ken.thompson", "Ken Thompson", ("platform",)),
    ("dennis.ritchie", "Dennis Ritchie", ("platform",)),
    ("barbara.liskov", "Barbara Liskov", ("engineering",)),
    ("donald.knuth", "Donald Knuth", ("engineering",)),
    ("John.McCarthy", "John McCarthy", ("engineering", "ml-research")),
    ("florence.nightingale", "Florence Nightingale", ("data-science",)),
    ("john.tukey", "John Tukey", ("data-science",)),
    ("hedy.lamarr", "Hedy Lamarr", ("data-science",)),
    ("ronald.fisher", "Ronald Fisher", ("data-science",)),
    ("karl.pearson", "Karl Pearson", ("data-science",)),
    ("luca.pacioli", "Luca Pacioli", ("finance",)),
    ("adam.smith", "Adam Smith", ("finance",)),
    ("mary.somerville", "Mary Somerville", ("finance",)),
    ("john.keynes", "John Keynes", ("finance",)),
    ("emmy.noether", "Emmy Noether", ("engineering",)),
    ("tim.berners-lee", "Tim Berners-Lee", ("platform",)),
    ("radia.perlman", "Radia Perlman", ("platform",)),
    ("claude.shannon", "Claude Shannon", ("ml-research",)),
    ("annie.easley", "Annie Easley", ("engineering",)),
    ("edsger.dijkstra", "Edsger Dijkstra", ("engineering",)),
    ("sophie.wilson", "Sophie Wilson", ("llm-admins",)),
)


DEMO_ORG_FILE = Path(__file__).with_name("demo-org.yaml")


def demo_org() -> list[dict[str, Any]]:
    """A small, readable organisation for the `demo` command (30 people, 7 groups).

    `company` is the root; `engineering` is the parent of `platform` and `ml-research`;
    `data-science` and `finance` sit under `company`; `llm-admins` is a flat group. A few people are
    in two groups, `John.McCarthy` has a mixed-case name, and e-mails are under `example.com`.
    The same documents ship as `demo-org.yaml` (`DEMO_ORG_FILE`) for a real catalog.
    """
    groups = [
        _group(
            "company", "Example Company", "organization", None, ("data-science", "engineering", "finance")
        ),
        _group("engineering", "Engineering", "department", "company", ("ml-research", "platform")),
        _group("platform", "Platform Team", "team", "engineering", members=("linus.torvalds",)),
        _group("ml-research", "ML Research", "team", "engineering", members=("alan.turing",)),
        _group("data-science", "Data Science", "department", "company"),
        _group("finance", "Finance", "department", "company"),
        _group("llm-admins", "LLM Administrators", "team", members=("grace.hopper",)),
    ]
    people = [_person(name, display, list(g)) for name, display, g in _DEMO_PEOPLE]
    return groups + people
