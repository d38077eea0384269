# Motion Studio, GPU-ready: `docker build -t motion-studio .`
# Run: docker run --gpus all -p 7860:7860 -v motion-studio-data:/data -e STUDIO_AUTH=me:secret motion-studio
# The container listens on 0.0.0.0, so the studio requires a login (STUDIO_AUTH); without one it
# refuses to start and says why (add --insecure-no-auth to CMD only behind your own auth proxy).
# PyPI's Linux x86_64 torch wheels bundle the CUDA runtime, so a slim Python base is enough;
# the host needs the NVIDIA driver and the NVIDIA container toolkit for --gpus.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/data/hf \
    STUDIO_OUTPUTS_DIR=/data/outputs \
    STUDIO_USER_PRESETS_DIR=/data/presets \
    GRADIO_ANALYTICS_ENABLED=False

RUN useradd --create-home --uid 1000 studio \
 && mkdir -p /app /data/hf /data/outputs /data/presets \
 && chown -R studio:studio /data

WORKDIR /app
COPY requirements.txt .
# requirements.txt pins torch; from PyPI on linux/x86_64 that pin is the CUDA build.
RUN pip install -r requirements.txt

COPY --chown=studio:studio . .
USER studio

EXPOSE 7860
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4).status == 200 else 1)"

CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
