"""ResNet-18 and ResNet-50 with the CIFAR stem: a 3x3 stride-1 first convolution, no max-pool."""

from __future__ import annotations

import torch
from torch import nn


class CifarResNet(nn.Module):
    def __init__(self, net: nn.Module, in_channels: int):
        super().__init__()
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.head = net.fc
        net.fc = nn.Identity()
        self.body = net

    def features(self, x):
        return torch.flatten(self.body(x), 1)

    def forward(self, x):
        return self.head(self.features(x))


def resnet18(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    import torchvision

    return CifarResNet(torchvision.models.resnet18(num_classes=num_classes), in_shape[0])


def resnet50(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    import torchvision

    return CifarResNet(torchvision.models.resnet50(num_classes=num_classes), in_shape[0])
