# Validation, helpers and target lists shared by every stage.
import json

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from ganrepro import config as ganrepro_config
from ganrepro.errors import ConfigError

# The package's check first: one sentence naming the key and what is allowed. Then
# Snakemake's own validate() against the same schema, which also fills in defaults.
try:
    ganrepro_config.resolve(config, origin=" + ".join(map(str, workflow.configfiles)) or None)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
validate(config, str(ganrepro_config.schema_path()))

DATASETS = list(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS),


def dataset_targets():
    return expand("results/datasets/{dataset}/dataset.json", dataset=DATASETS)


def dataset_spec(wildcards):
    """The resolved config entry of one dataset, as JSON for `ganrepro data prepare --spec`."""
    return json.dumps(config["datasets"][wildcards.dataset], sort_keys=True)
