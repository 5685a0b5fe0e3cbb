"""The dataset registry's table: a dataset's name -> its loader module (one loader per dataset).

Data only (a test keeps it so): prepare_data depends on the entry of its dataset, tracked as its
params, and on that loader's code, not on this file.
"""

LOADERS = {
    "digits": "mudiff.data.digits",
    "fashion_mnist": "mudiff.data.idx",
    "mnist": "mudiff.data.idx",
    "cifar10": "mudiff.data.cifar",
    "cifar100": "mudiff.data.cifar",
}
