"""In-process HTTP simulators of the Backstage catalog and the LiteLLM admin API.

They reproduce the behaviour recorded on the real servers (`docs/litellm-api.md`, `docs/backstage-api.md`),
quirks included, so the job can be tested and benchmarked without the real servers:

>>> from catalog_sync.sim import BackstageSim, LiteLLMSim, serve, demo_org
>>> backstage = BackstageSim(); backstage.set_entities(demo_org())
>>> with serve(backstage) as url: ...
"""

from .backstage import BackstageSim
from .litellm import LiteLLMSim
from .org import demo_org, generated_org, load_entities
from .server import RecordedRequest, Response, SimApp, SimServer, serve

__all__ = [
    "BackstageSim",
    "LiteLLMSim",
    "RecordedRequest",
    "Response",
    "SimApp",
    "SimServer",
    "demo_org",
    "generated_org",
    "load_entities",
    "serve",
]
