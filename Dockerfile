# Motion Studio in a container, two targets:
#   docker build --target cpu -t motion-studio:cpu .   the studio and its CPU engine (no torch)
#   docker build --target gpu -t motion-studio:gpu .   plus the model backends (torch CUDA build)
# Run (add --gpus all for the gpu image):
#   docker run -p 7860:7860 -v motion-studio-data:/data -e STUDIO_AUTH=me:secret motion-studio:cpu
# The container listens on 0.0.0.0, so the studio requires a login (STUDIO_AUTH); without one it
# refuses to start and says why (add --insecure-no-auth to CMD only behind your own auth proxy).
# Everything the studio writes lives in /data: model cache, outputs, user presets and Gradio's
# cache of uploads and served clips. A bind-mounted host folder must be writable by the
# container's user: run with --user "$(id -u):$(id -g)" (the entrypoint says so if it is not).
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/data/hf \
    XDG_CACHE_HOME=/data/cache \
    GRADIO_TEMP_DIR=/data/gradio-cache \
    STUDIO_OUTPUTS_DIR=/data/outputs \
    STUDIO_USER_PRESETS_DIR=/data/presets \
    GRADIO_ANALYTICS_ENABLED=False

RUN useradd --create-home --uid 1000 studio \
 && mkdir -p /app /data/hf /data/cache /data/gradio-cache /data/outputs /data/presets \
 && chown -R studio:studio /data

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

EXPOSE 7860
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]

# The embedded engine only: requirements.txt has no torch, so nothing CUDA is installed.
FROM base AS cpu
COPY --chown=studio:studio . .
USER studio

# Model backends on an NVIDIA GPU. requirements-models.txt pins torch 2.13.0, whose Linux
# x86_64 wheel from the default index is built against CUDA 13.0 and bundles that runtime,
# so a slim base is enough: the host needs the NVIDIA driver (580 or newer) and the NVIDIA
# container toolkit for --gpus. Last, so a plain `docker build .` gives this image.
FROM base AS gpu
COPY requirements-models.txt .
RUN pip install -r requirements-models.txt
COPY --chown=studio:studio . .
USER studio
