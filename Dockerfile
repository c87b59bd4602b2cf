# The weightbase server image: `weightbase server` (the REST API) by default, and the
# image that `weightbase deploy manifests` runs as `weightbase serve NAME@VERSION`.
#   docker build -t weightbase:0.1.0 .
# The workspace it serves comes from WEIGHTBASE_URL and WEIGHTBASE_TOKEN (a Kubernetes
# Secret in the manifests), or WEIGHTBASE_HOME for a volume mounted at /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first and from the CPU index: the default wheel brings CUDA libraries the
# image does not need (a GPU node's driver and runtime come from the node).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/weightbase
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[server,hf]"

# A fixed numeric uid and gid, so that the manifests' runAsNonRoot/runAsUser can check it.
RUN groupadd --gid 10001 weightbase \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/weightbase weightbase \
    && mkdir /data && chown weightbase:weightbase /data
USER 10001:10001
ENV WEIGHTBASE_HOME=/data
WORKDIR /home/weightbase

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["weightbase"]
CMD ["server", "--host", "0.0.0.0", "--port", "8080"]
