// Comparison controls for the four variants: one play/pause/scrub for all, frame stepping,
// an A/B viewer with flip and split slider, and keys 1-4 to select. Runs as the js_on_load of
// the gr.HTML bar (`element` is that bar). Plain DOM, no libraries, nothing from the network.
(() => {
  const bar = element;
  const $ = (sel) => bar.querySelector(sel);
  const gridVideos = () =>
    [1, 2, 3, 4].map((i) => document.querySelector(`#variant-${i} video`)).filter((v) => v && v.currentSrc);
  const abVideos = () => [$(".ab-a"), $(".ab-b")].filter((v) => v && v.currentSrc);
  const all = () => [...gridVideos(), ...abVideos()];
  const fps = () => Number(($(".cmp") || {dataset: {}}).dataset.fps || 24);
  const leader = () => gridVideos()[0];

  function setTime(t) {
    for (const v of all()) {
      if (Number.isFinite(v.duration)) v.currentTime = Math.min(t, Math.max(0, v.duration - 1e-3));
    }
  }
  function playAll() {
    const lead = leader();
    if (lead) setTime(lead.currentTime);
    for (const v of all()) {
      v.muted = true;
      v.play().catch(() => {});
    }
    $(".cmp-play").textContent = "Pause all";
  }
  function pauseAll() {
    for (const v of all()) v.pause();
    $(".cmp-play").textContent = "Play all";
  }
  function togglePlay() {
    const lead = leader();
    if (!lead) return;
    lead.paused ? playAll() : pauseAll();
  }
  function step(frames) {
    const lead = leader();
    if (!lead) return;
    pauseAll();
    const t = Math.max(0, Math.min(lead.duration || 0, lead.currentTime + frames / fps()));
    setTime(t);
  }

  // Keep every clip on the leader's clock: correct anything more than half a frame off.
  function tick() {
    const lead = leader();
    if (lead && Number.isFinite(lead.duration) && lead.duration > 0) {
      const tol = 0.5 / fps();
      for (const v of all()) {
        if (v === lead) continue;
        if (Math.abs(v.currentTime - lead.currentTime) > tol && Number.isFinite(v.duration)) {
          v.currentTime = Math.min(lead.currentTime, v.duration - 1e-3);
        }
        if (!lead.paused && v.paused) v.play().catch(() => {});
        if (lead.paused && !v.paused) v.pause();
      }
      const scrub = $(".cmp-scrub");
      if (document.activeElement !== scrub) scrub.value = String(lead.currentTime / lead.duration);
      $(".cmp-time").textContent =
        `frame ${Math.round(lead.currentTime * fps()) + 1} / ${Math.round(lead.duration * fps())}`;
    }
    requestAnimationFrame(tick);
  }

  function loadAB() {
    const grid = [1, 2, 3, 4].map((i) => document.querySelector(`#variant-${i} video`));
    const a = grid[Number($(".ab-pick-a").value) - 1];
    const b = grid[Number($(".ab-pick-b").value) - 1];
    for (const [slot, src] of [[$(".ab-a"), a], [$(".ab-b"), b]]) {
      const url = src && src.currentSrc;
      if (url && slot.src !== url) slot.src = url;
    }
    const lead = leader();
    if (lead) setTime(lead.currentTime);
  }
  function split(pct) {
    $(".ab-b").style.clipPath = `inset(0 0 0 ${pct}%)`;
    $(".ab-line").style.left = `${pct}%`;
  }
  function flip() {
    const b = $(".ab-b");
    b.style.visibility = b.style.visibility === "hidden" ? "visible" : "hidden";
    $(".ab-label").textContent = b.style.visibility === "hidden" ? "showing A" : "showing B (right of the line)";
  }

  $(".cmp-play").addEventListener("click", togglePlay);
  $(".cmp-back").addEventListener("click", () => step(-1));
  $(".cmp-fwd").addEventListener("click", () => step(1));
  $(".cmp-scrub").addEventListener("input", (e) => {
    const lead = leader();
    if (!lead) return;
    pauseAll();
    setTime(Number(e.target.value) * (lead.duration || 0));
  });
  $(".cmp-ab").addEventListener("click", () => {
    const box = $(".ab-box");
    box.hidden = !box.hidden;
    if (!box.hidden) loadAB();
  });
  $(".ab-pick-a").addEventListener("change", loadAB);
  $(".ab-pick-b").addEventListener("change", loadAB);
  $(".ab-split").addEventListener("input", (e) => split(Number(e.target.value)));
  $(".ab-flip").addEventListener("click", flip);
  split(50);

  // Keys: 1-4 select a variant, space plays/pauses all, , and . step a frame, f flips A/B.
  document.addEventListener("keydown", (e) => {
    const tag = (e.target && e.target.tagName) || "";
    if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) || e.target.isContentEditable) return;
    if (e.metaKey || e.ctrlKey || e.altKey) return;
    if (["1", "2", "3", "4"].includes(e.key)) {
      const btn = document.querySelector(`#select-${e.key}`);
      if (btn) {
        btn.click();
        e.preventDefault();
      }
    } else if (e.key === " ") {
      togglePlay();
      e.preventDefault();
    } else if (e.key === ",") step(-1);
    else if (e.key === ".") step(1);
    else if (e.key === "f") flip();
  });

  // Outline the chosen variant in the grid.
  document.addEventListener("click", (e) => {
    const btn = e.target.closest && e.target.closest("[id^=select-]");
    if (!btn) return;
    document.querySelectorAll(".variant.selected").forEach((el) => el.classList.remove("selected"));
    const col = btn.closest(".variant");
    if (col) col.classList.add("selected");
  });

  requestAnimationFrame(tick);
})();
