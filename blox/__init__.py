"""blox: a JAX neural-network library that keeps structure (Graph) and state (Params) apart."""

from ._attention import KVCache as KVCache
from ._attention import MultiHeadAttention as MultiHeadAttention
from ._attention import apply_rope as apply_rope
from ._attention import rope_frequencies as rope_frequencies
from ._checkpoint import load as load
from ._checkpoint import save as save
from ._conv import Conv as Conv
from ._conv import ConvTranspose as ConvTranspose
from ._dropout import Dropout as Dropout
from ._errors import BloxError as BloxError
from ._errors import CheckpointError as CheckpointError
from ._errors import GraphError as GraphError
from ._errors import LockedParamsError as LockedParamsError
from ._errors import ParamError as ParamError
from ._errors import RngError as RngError
from ._errors import ShapeError as ShapeError
from ._graph import Graph as Graph
from ._linear import Embed as Embed
from ._linear import Linear as Linear
from ._mlp import MLP as MLP
from ._mlp import SwiGLU as SwiGLU
from ._module import Module as Module
from ._norm import BatchNorm as BatchNorm
from ._norm import LayerNorm as LayerNorm
from ._norm import RMSNorm as RMSNorm
from ._params import Param as Param
from ._params import Params as Params
from ._paths import parse_path as parse_path
from ._paths import path_str as path_str
from ._pooling import avg_pool as avg_pool
from ._pooling import max_pool as max_pool
from ._pooling import min_pool as min_pool
from ._recurrent import GRU as GRU
from ._recurrent import LSTM as LSTM
from ._recurrent import LSTMState as LSTMState
from ._recurrent import RecurrenceBase as RecurrenceBase
from ._recurrent import SequenceBase as SequenceBase
from ._rng import Rng as Rng
from ._rng import seed_all as seed_all
from ._scan import ScanBlocks as ScanBlocks
from ._sequential import Sequential as Sequential
from ._sharding import param_shardings as param_shardings
from ._sharding import param_specs as param_specs
from ._transformer import TransformerBlock as TransformerBlock

__version__ = "0.1.0"
