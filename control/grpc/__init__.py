"""gRPC services of the control plane: ``StrategyService`` and ``EngineService`` (see
``control/proto/mevblade_control.proto``), standard health checking and server reflection.

``start_grpc_server(ctx, port)`` serves them on an asyncio (``grpc.aio``) server over the same
:class:`~mevblade.control.api.context.ServiceContext` as the REST API; ``GrpcClient`` is the
client used by ``mevblade grpc …``. Generated modules come from :mod:`.gen`.
"""

from mevblade.control.grpc.client import GrpcClient
from mevblade.control.grpc.server import start_grpc_server

__all__ = ["GrpcClient", "start_grpc_server"]
