"""The method registry's table: a method's name -> its module (registering a method is one line here).

Data only (a test keeps it so): a job depends on the entries it runs, which the pipeline tracks as
its params, not on this file, so registering a method reruns nothing that was already run.
"""

METHODS = {
    "retrain": "mudiff.methods.retrain",
    "finetune": "mudiff.methods.finetune",
    "neggrad": "mudiff.methods.neggrad",
    "neggrad_plus": "mudiff.methods.neggrad_plus",
    "l1_sparse": "mudiff.methods.l1_sparse",
    "random_label": "mudiff.methods.random_label",
    "salun": "mudiff.methods.salun",
    "scrub": "mudiff.methods.scrub",
}

# Meta-algorithm -> module. Those in WRAPPERS take one inner method after a colon.
META = {
    "rum_f": "mudiff.methods.rum",
    "shuffle": "mudiff.methods.rum",
    "rum": "mudiff.methods.rum",
    "rsu": "mudiff.methods.rsu",
}
