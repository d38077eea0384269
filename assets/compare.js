// Comparison controls for the four variants: one play/pause/scrub for all, frame stepping,
// an A/B viewer with flip and split slider, keys 1-4 to select, and a sound switch that lets
// the selected take be heard (models such as LTX-2 make sound; the others stay muted). Runs as the js_on_load of
// the gr.HTML bar (`element` is that bar, `props.value` the clips' fps). Plain DOM, no
// libraries, nothing from the network.
//
// The clips change under the bar (a new job, autoplay, a video's own controls), so the bar
// never trusts what it showed before: every frame, tick() reads the clips and redraws the
// button label, the frame counter, the A/B sources and the outline from what they are now.
(() => {
  const bar = element;
  const $ = (sel) => bar.querySelector(sel);
  const slotVideo = (i) => document.querySelector(`#variant-${i} video`);
  const gridVideos = () => [1, 2, 3, 4].map(slotVideo).filter((v) => v && v.currentSrc);
  const abOpen = () => !$(".ab-box").hidden;
  const abVideos = () =>
    abOpen() ? [$(".ab-a"), $(".ab-b")].filter((v) => v && v.currentSrc) : [];
  const all = () => [...gridVideos(), ...abVideos()];
  const fps = () => {
    const f = Number(props.value);
    return f > 0 ? f : 24;
  };
  const leader = () => gridVideos()[0];
  const ready = (v) => v && Number.isFinite(v.duration) && v.duration > 0;

  // Frames are counted from the leader's duration and the job's fps, the same way everywhere:
  // a clip of `total` frames shows frame k (0-based) from k/fps until (k+1)/fps.
  const total = (v) => Math.max(1, Math.round(v.duration * fps()));
  const frameOf = (v) =>
    Math.min(total(v) - 1, Math.max(0, Math.floor(v.currentTime * fps() + 1e-3)));
  // Seek to the middle of a frame, so that every clip shows that frame whatever its rounding.
  const frameTime = (v, k) => Math.min((k + 0.5) / fps(), Math.max(0, v.duration - 1e-3));

  function setTime(t) {
    const lead = leader();
    if (ready(lead)) t = Math.min(t, frameTime(lead, total(lead) - 1));
    for (const v of all()) {
      if (!ready(v)) continue;
      const to = Math.min(t, Math.max(0, v.duration - 1e-3));
      // Chromium sends a paused looping clip back to 0 when asked to seek where it already is.
      if (Math.abs(v.currentTime - to) > 1e-4) v.currentTime = to;
    }
  }
  // The take heard while the sound is on: the selected one (its clip is in the Selected
  // panel), else the first slot's. One at a time: four takes at once would be noise.
  let soundOn = false;
  function selectedSlot() {
    const chosen = document.querySelector("#selected video");
    const picked = chosen ? chosen.currentSrc : "";
    return [1, 2, 3, 4].find((i) => {
      const v = slotVideo(i);
      return picked && v && v.currentSrc === picked;
    });
  }
  const heardSlot = () => (soundOn ? selectedSlot() || (leader() ? 1 : undefined) : undefined);
  function applySound() {
    const slot = heardSlot();
    const heard = slot ? slotVideo(slot) : null;
    // The A/B copies show the same clips: they stay muted, or a take would be heard twice.
    for (const v of all()) {
      const mute = v !== heard;
      if (v.muted !== mute) v.muted = mute;
    }
    const btn = $(".cmp-sound");
    const text = slot ? `Sound: #${slot}` : "Sound off";
    if (btn.textContent !== text) btn.textContent = text;
    btn.setAttribute("aria-pressed", String(soundOn));
  }
  function toggleSound() {
    soundOn = !soundOn;
    applySound();
    const slot = heardSlot();
    const lead = leader();
    // Unmuted, a browser may pause a clip it let play muted; pressing the switch is the
    // gesture that lets it play on with its sound.
    if (slot && lead && !lead.paused && slotVideo(slot).paused) {
      slotVideo(slot).play().catch(() => {});
    }
  }

  // Whether the takes should be playing: new takes autoplay, and stay playing until someone
  // pauses them (Pause all, a frame step, the scrubber, a clip's own controls, a script). A
  // leader that never started (the browser dropped its autoplay: a clip still loading, a busy
  // machine) is started again, instead of leaving every take paused behind a paused leader.
  let wantPlaying = false;
  let retried = 0;
  let started = new WeakMap(); // the source each clip was seen playing on since the intent
  function seenPlaying(v) {
    if (v && !v.paused) started.set(v, v.currentSrc);
  }
  function keepPlaying(lead, now) {
    if (!wantPlaying || !ready(lead)) return;
    if (!lead.paused) return seenPlaying(lead);
    if (started.get(lead) === lead.currentSrc) {
      wantPlaying = false; // it played, and someone paused it
      return;
    }
    if (now - retried < 500) return;
    retried = now;
    lead.play().catch(() => {});
  }
  function intendPlaying() {
    wantPlaying = true;
    started = new WeakMap();
  }

  function playAll() {
    intendPlaying();
    const lead = leader();
    if (lead) setTime(lead.currentTime);
    for (const v of all()) {
      v.muted = true;
      v.play().catch(() => {});
    }
    seenPlaying(lead);
    applySound();
    showPlaying(true);
  }
  function pauseAll() {
    wantPlaying = false;
    for (const v of all()) v.pause();
    showPlaying(false);
  }
  function togglePlay() {
    const lead = leader();
    if (!lead) return;
    lead.paused ? playAll() : pauseAll();
  }
  function step(frames) {
    const lead = leader();
    if (!ready(lead)) return;
    pauseAll();
    const k = Math.max(0, Math.min(total(lead) - 1, frameOf(lead) + frames));
    setTime(frameTime(lead, k));
  }

  function showPlaying(playing) {
    const btn = $(".cmp-play");
    const text = playing ? "Pause all" : "Play all";
    if (btn.textContent !== text) btn.textContent = text;
  }

  // The A/B viewer shows the takes now in the slots it names (none while it is closed).
  function loadAB() {
    const open = abOpen();
    for (const [slot, pick] of [[$(".ab-a"), $(".ab-pick-a")], [$(".ab-b"), $(".ab-pick-b")]]) {
      const src = slotVideo(Number(pick.value));
      const url = open && src ? src.currentSrc : "";
      if (url && slot.src !== url) {
        slot.src = url;
      } else if (!url && slot.getAttribute("src")) {
        slot.removeAttribute("src");
        slot.load();
      }
    }
    const lead = leader();
    if (open && lead) setTime(lead.currentTime);
  }
  function split(pct) {
    $(".ab-b").style.clipPath = `inset(0 0 0 ${pct}%)`;
    $(".ab-line").style.left = `${pct}%`;
  }
  function flip() {
    const b = $(".ab-b");
    b.style.visibility = b.style.visibility === "hidden" ? "visible" : "hidden";
    $(".ab-label").textContent =
      b.style.visibility === "hidden" ? "showing A" : "showing B (right of the line)";
  }

  // The slot outlined is the one whose clip is in the Selected panel: a new job (whose clips
  // are not selected yet) clears it, and the preselected best take outlines slot 1.
  function outline() {
    const chosen = document.querySelector("#selected video");
    const picked = chosen ? chosen.currentSrc : "";
    for (const i of [1, 2, 3, 4]) {
      const slot = document.querySelector(`#variant-${i}`);
      const col = slot && slot.closest(".variant");
      if (!col) continue;
      const v = slotVideo(i);
      col.classList.toggle("selected", Boolean(picked && v && v.currentSrc === picked));
    }
  }

  let gridSources = "";
  function tick() {
    const sources = [1, 2, 3, 4].map((i) => (slotVideo(i) || {}).currentSrc || "").join(" ");
    if (sources !== gridSources) {
      gridSources = sources;
      intendPlaying(); // the takes autoplay
      loadAB();
    }
    outline();
    // While the sound is on, the selected take may change under it (a click, key 1-4).
    if (soundOn) applySound();
    const lead = leader();
    keepPlaying(lead, performance.now());
    showPlaying(Boolean(lead && !lead.paused));
    // Keep every clip on the leader's clock: correct anything more than half a frame off.
    if (ready(lead)) {
      const tol = 0.5 / fps();
      for (const v of all()) {
        if (v === lead) continue;
        if (Math.abs(v.currentTime - lead.currentTime) > tol && ready(v)) {
          v.currentTime = Math.min(lead.currentTime, v.duration - 1e-3);
        }
        if (!lead.paused && v.paused) v.play().catch(() => {});
        if (lead.paused && !v.paused) v.pause();
      }
      const scrub = $(".cmp-scrub");
      if (document.activeElement !== scrub) scrub.value = String(lead.currentTime / lead.duration);
    }
    const counter = ready(lead) ? `frame ${frameOf(lead) + 1} / ${total(lead)}` : "";
    if ($(".cmp-time").textContent !== counter) $(".cmp-time").textContent = counter;
    requestAnimationFrame(tick);
  }

  document.addEventListener(
    "play",
    (e) => {
      if (e.target instanceof HTMLVideoElement) seenPlaying(e.target);
    },
    true,
  );

  $(".cmp-play").addEventListener("click", togglePlay);
  $(".cmp-back").addEventListener("click", () => step(-1));
  $(".cmp-fwd").addEventListener("click", () => step(1));
  $(".cmp-scrub").addEventListener("input", (e) => {
    const lead = leader();
    if (!ready(lead)) return;
    pauseAll();
    setTime(Number(e.target.value) * lead.duration);
  });
  $(".cmp-ab").addEventListener("click", () => {
    const box = $(".ab-box");
    box.hidden = !box.hidden;
    loadAB();
  });
  $(".ab-pick-a").addEventListener("change", loadAB);
  $(".ab-pick-b").addEventListener("change", loadAB);
  $(".ab-split").addEventListener("input", (e) => split(Number(e.target.value)));
  $(".ab-flip").addEventListener("click", flip);
  $(".cmp-sound").addEventListener("click", toggleSound);
  split(50);

  // Keys: 1-4 select the take in that slot (as its button does), space plays/pauses all,
  // , and . step a frame, f flips A/B, m switches the selected take's sound on or off.
  const typing = (e) => {
    const tag = (e.target && e.target.tagName) || "";
    return ["INPUT", "TEXTAREA", "SELECT"].includes(tag) || e.target.isContentEditable;
  };
  document.addEventListener("keydown", (e) => {
    if (typing(e) || e.metaKey || e.ctrlKey || e.altKey) return;
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
    else if (e.key === "m") toggleSound();
  });
  // A focused button would also "click" on space's keyup: space already toggled playback.
  document.addEventListener("keyup", (e) => {
    if (e.key === " " && !typing(e) && !(e.metaKey || e.ctrlKey || e.altKey)) e.preventDefault();
  });

  requestAnimationFrame(tick);
})();
