# Minimal CPU image of Kronos Serve; the gRPC server issue completes it (ports, health check).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# torch first and from the CPU index, so the package install finds the pin satisfied
# instead of pulling a CUDA build
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY server ./server
COPY clients ./clients
COPY rest_bridge ./rest_bridge
RUN pip install . && rm -rf server clients rest_bridge

RUN useradd --create-home --uid 10001 kronos
USER kronos
# gRPC and the REST API (KRONOS_GRPC_PORT, KRONOS_HTTP_PORT)
EXPOSE 50051 8000

ENTRYPOINT ["kronos-serve"]
CMD ["--help"]
