"""blox.models: reference architectures that load (and save) Hugging Face checkpoints.

GPT-2, Llama (2 and 3), BERT and ViT follow the Hugging Face configs field by
field; :func:`from_hf` builds one from a model folder and loads its safetensors
(PyTorch or Flax naming), :func:`to_hf` writes one back. ResNet-50 sits beside
them as the reference convolutional network.
"""

from ._bert import Bert as Bert
from ._bert import BertConfig as BertConfig
from ._bert import BertOutput as BertOutput
from ._common import ACTIVATIONS as ACTIVATIONS
from ._common import count_params as count_params
from ._generate import filter_logits as filter_logits
from ._generate import generate as generate
from ._gpt2 import GPT2 as GPT2
from ._gpt2 import GPT2Config as GPT2Config
from ._hf import ARCHITECTURES as ARCHITECTURES
from ._hf import HFMatch as HFMatch
from ._hf import HFMatchError as HFMatchError
from ._hf import build_from_config as build_from_config
from ._hf import config_from_hf as config_from_hf
from ._hf import from_hf as from_hf
from ._hf import to_hf as to_hf
from ._llama import Llama as Llama
from ._llama import LlamaConfig as LlamaConfig
from ._resnet import BasicBlock as BasicBlock
from ._resnet import Bottleneck as Bottleneck
from ._resnet import ResNet as ResNet
from ._resnet import Shortcut as Shortcut
from ._resnet import resnet18 as resnet18
from ._resnet import resnet50 as resnet50
from ._vit import ViT as ViT
from ._vit import ViTConfig as ViTConfig
from ._vit import ViTOutput as ViTOutput
