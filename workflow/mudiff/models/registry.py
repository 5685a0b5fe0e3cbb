"""The model registry's table: a model's name -> `module:factory` (adding a model is one line here).

Data only (a test keeps it so): a job depends on the entry of the model it builds, tracked as its
params, and on that module's code, not on this file.
"""

MODELS = {
    "mlp": "mudiff.models.mlp:MLP",
    "smallcnn": "mudiff.models.smallcnn:SmallCNN",
    "resnet18": "mudiff.models.resnet:resnet18",
    "resnet50": "mudiff.models.resnet:resnet50",
}
