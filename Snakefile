# mudiff: which training samples are hard to unlearn, why, and what to do about it.
# The DAG: prepare_data -> track_data -> train_target -> scores_target -+-> scores -> forget_set
#                                     \-> train_bank (per shard) -> merge_bank -> scores_bank -/  \-> proxies
#          forget_set -> unlearn (method x forget set) -> evaluate -> analysis -> report (+ proxies)
from snakemake.utils import min_version

min_version("9.0")


# The default study, unless --configfile names another: that file alone (plus the schema's
# defaults) is then the study, rather than a deep merge onto the default.
if not workflow.overwrite_configfiles:

    configfile: "config/default.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/bank.smk"
include: "rules/scores.smk"
include: "rules/proxies.smk"
include: "rules/forget_sets.smk"
include: "rules/unlearn.smk"
include: "rules/evaluate.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"


rule all:
    input:
        REPORT,
