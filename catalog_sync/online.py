"""`validate --online`: the config checked against the live systems, read-only."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog_sync.config import Config
from catalog_sync.http import ApiError
from catalog_sync.job import clients_for
from catalog_sync.logs import redact

# LiteLLM's names for "every model", never listed by /v1/models
# (docs/litellm-api.md#user-update-drops-empty-values).
SPECIAL_MODELS = frozenset({"all-proxy-models", "no-default-models"})


@dataclass
class OnlineCheck:
    unreachable: list[str] = field(default_factory=list)  # a server down or refusing the credentials
    problems: list[str] = field(default_factory=list)  # the config names something that does not exist
    passed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem (an optional role's group)


def check_online(config: Config) -> OnlineCheck:
    """Credentials, role groups, teams and models, each problem named by its path in the config."""
    out = OnlineCheck()
    backstage, litellm = clients_for(config)
    try:
        groups = backstage.group_refs()
    except ApiError as exc:
        out.unreachable.append(f"backstage.token / backstage.base_url: {redact(str(exc))}")
    else:
        out.passed.append(f"Backstage: credentials work, {len(groups)} groups")
        for i, role in enumerate(config.roles):
            if role.group_ref not in groups:
                line = f"roles[{i}].group: {role.group_ref} does not exist in the catalog"
                if role.optional:
                    out.notes.append(f"{line} (the role is optional: true)")
                else:
                    out.problems.append(line)
    try:
        teams = litellm.team_ids()
        models = litellm.model_names()
    except ApiError as exc:
        out.unreachable.append(f"litellm.master_key / litellm.base_url: {redact(str(exc))}")
    else:
        out.passed.append(f"LiteLLM: credentials work, {len(teams)} teams, {len(models)} models")
        grants = [("defaults", config.defaults), *((f"roles[{i}]", r) for i, r in enumerate(config.roles))]
        for where, grant in grants:
            for team in grant.teams or ():
                if team not in teams:
                    out.problems.append(f"{where}.teams: team {team} does not exist in LiteLLM")
            for model in grant.models or ():
                if model not in models and model not in SPECIAL_MODELS and "*" not in model:
                    out.problems.append(f"{where}.models: model {model} is not served by LiteLLM")
    backstage.close()
    litellm.close()
    return out
