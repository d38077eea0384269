"""Tiny random-weight diffusers pipelines built offline, saved as folders the model manager can load.

Configs follow diffusers' own fast tests (tests/pipelines/*/test_*.py); text encoders and
tokenizers are built locally so nothing is fetched from the hub.
"""

from __future__ import annotations

from pathlib import Path

# One tiny pipeline per kind of checkpoint in the catalog (two for Wan 2.2's layouts).
KINDS = (
    "svd", "ltx", "ltx2", "cogvideox", "cogvideox1.5", "wan", "wan2.2-ti2v", "wan2.2-a14b",
    "skyreels", "hunyuan15",
)  # fmt: skip
# The tiny pipeline standing in for each catalog entry: same pipeline class and layout.
FOR_CHECKPOINT = {
    "svd-xt": "svd",
    "ltx-video": "ltx",
    "cogvideox-5b-i2v": "cogvideox",
    "wan2.1-i2v-480p": "wan",
    "wan2.2-ti2v-5b": "wan2.2-ti2v",
    "skyreels-v2-i2v-1.3b": "skyreels",
    "ltx-2": "ltx2",
    "wan2.2-i2v-a14b": "wan2.2-a14b",
    "hunyuanvideo-1.5-i2v-480p": "hunyuan15",
    "cogvideox1.5-5b-i2v": "cogvideox1.5",
}
# Catalog settings a tiny pipeline cannot afford on a CPU: CogVideoX 1.5's size rule (a short
# side of 768) would render 1152x768 frames, minutes per test; its own test checks the rule.
TINY_OPTIONS = {"cogvideox1.5-5b-i2v": {"short_side": 64, "max_long_side": 128}}


def tiny_catalog():
    """The real catalog, with TINY_OPTIONS applied: what the tiny pipelines are run through."""
    import dataclasses

    from studio.models import load_catalog

    catalog = load_catalog()
    for cid, options in TINY_OPTIONS.items():
        catalog[cid] = dataclasses.replace(
            catalog[cid], options={**catalog[cid].options, **options}
        )
    return catalog


def _t5(d_model: int = 32):
    from transformers import T5Config, T5EncoderModel, T5TokenizerFast

    words = [
        "a",
        "the",
        "photo",
        "of",
        "camera",
        "slow",
        "push",
        "in",
        "pull",
        "out",
        "product",
        "light",
        "motion",
        "video",
        "dance",
        "monkey",
    ]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{w}", -3.0) for w in words] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz,.-"]
    tokenizer = T5TokenizerFast(vocab=vocab, extra_ids=0)
    config = T5Config(
        vocab_size=len(vocab),
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(config), tokenizer


def _gemma_tokenizer():
    """A Gemma tokenizer (BPE with byte fallback) over a small vocabulary: every byte has a
    token, so any prompt encodes."""
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for word in ("a", "the", "photo", "of", "camera", "slow", "push", "in", "product", "light"):
        vocab[f"▁{word}"] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    return GemmaTokenizer(vocab=vocab, merges=[])


def _qwen_tokenizer():
    """A Qwen2 byte-level tokenizer (one token per byte, no merges) with a ChatML template,
    which HunyuanVideo 1.5 formats its prompts with."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {char: i for i, char in enumerate(bytes_to_unicode().values())}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[special] = len(vocab)
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return Qwen2Tokenizer(vocab=vocab, merges=[], chat_template=template)


def build_svd():
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
    )
    # image_size=224: the pipeline always resizes the conditioning image to 224.
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=224,
            intermediate_size=37,
            patch_size=32,
        )
    )
    return StableVideoDiffusionPipeline(
        unet=unet,
        image_encoder=image_encoder,
        scheduler=scheduler,
        vae=vae,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )


def build_ltx():
    """LTX-Video 0.9.5's layout: the components of 0.9.0, driven by LTXConditionPipeline."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=2,  # first-block caching needs a block after the first
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    text_encoder, tokenizer = _t5()
    return LTXConditionPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def build_cogvideox():
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
        DDIMScheduler,
    )

    torch.manual_seed(0)
    # Learned positional embeddings fix the resolution: latent 4x4 -> 32x32 pixels, 9 frames.
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=2,  # first-block caching needs a block after the first
        sample_width=4,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    text_encoder, tokenizer = _t5()
    return CogVideoXImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=DDIMScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def build_cogvideox15():
    """CogVideoX 1.5 I2V's layout: temporal patches of 2 latent frames (the pipeline pads the
    latent frames to a multiple), the ofs embedding, rotary positions only, so any size runs."""
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        ofs_embed_dim=2,
        text_embed_dim=32,
        num_layers=2,  # first-block caching needs a block after the first
        # With rotary positions only, the sample size is the largest grid the positions cover
        # (the real config's 300x300 latents); 1.5 I2V renders a short side of 768 pixels.
        sample_width=300,
        sample_height=300,
        sample_frames=9,
        patch_size=2,
        patch_size_t=2,
        patch_bias=False,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=False,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    text_encoder, tokenizer = _t5()
    return CogVideoXImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=CogVideoXDPMScheduler(timestep_spacing="trailing"),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def build_ltx2():
    """LTX-2: one transformer denoising video and audio latents together, a Gemma 3 text
    encoder (all its hidden states feed the text connectors), an audio VAE and a vocoder.

    Configs follow diffusers' LTX-2 image-to-video test, with a VAE that compresses 8x in
    space and time (the real one: 32x, 8x) and a vocoder that upsamples by the mel hop (160),
    so the tiny model makes as many seconds of sound as of video.
    """
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2ImageToVideoPipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig
    from transformers.models.gemma3 import Gemma3TextConfig

    tokenizer = _gemma_tokenizer()
    text = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                            head_dim=8, max_position_embeddings=256, sliding_window=16)  # fmt: skip
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, image_size=32, patch_size=8)  # fmt: skip
    torch.manual_seed(0)
    text_encoder = Gemma3ForConditionalGeneration(
        Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
    )
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
        audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8,
        num_layers=2, qk_norm="rms_norm_across_heads", caption_channels=16,
        rope_double_precision=False, rope_type="split",
    )  # fmt: skip
    torch.manual_seed(0)
    # The connectors' width (heads x head dim) is the text encoder's hidden size.
    connectors = LTX2TextConnectors(
        caption_channels=16, text_proj_in_factor=text.num_hidden_layers + 1,
        video_connector_num_attention_heads=2, video_connector_attention_head_dim=8,
        video_connector_num_layers=1, video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2, audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1, audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32, rope_theta=10000.0, rope_double_precision=False,
        causal_temporal_positioning=False, rope_type="split",
    )  # fmt: skip
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8),
        decoder_block_out_channels=(8, 8, 8), layers_per_block=(1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1), spatio_temporal_scaling=(True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatiotemporal",) * 3, upsample_residual=(False, False, False),
        upsample_factor=(1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )  # fmt: skip
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None,
        in_channels=2, resolution=32, latent_channels=2, norm_type="pixel",
        causality_axis="height", dropout=0.0, mid_block_add_attention=False, sample_rate=16000,
        mel_hop_length=160, is_causal=True, mel_bins=8,
    )  # fmt: skip
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=2 * 8, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[16, 10, 8],
        upsample_factors=[8, 5, 4], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=16000,
    )  # fmt: skip
    return LTX2ImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        audio_vae=audio_vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        vocoder=vocoder,
    )


def build_hunyuan15():
    """HunyuanVideo 1.5 I2V: a Qwen2.5-VL text model, a ByT5 glyph encoder, a SigLIP image
    encoder, a ClassifierFreeGuidance guider; target_size 16 makes a 12x16 or 16x16 video.

    Configs follow diffusers' HunyuanVideo 1.5 test (text-to-video there), plus the image encoder.
    """
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15ImageToVideoPipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        SiglipImageProcessor,
        SiglipVisionConfig,
        SiglipVisionModel,
        T5Config,
        T5EncoderModel,
    )

    tokenizer = _qwen_tokenizer()
    torch.manual_seed(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
        text_embed_2_dim=32, image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=16,
        task_type="i2v",
    )  # fmt: skip
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16),
        layers_per_block=1, spatial_compression_ratio=4, temporal_compression_ratio=2,
        downsample_match_channel=False, upsample_match_channel=False,
    )  # fmt: skip
    torch.manual_seed(0)
    text_encoder = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, rope_theta=1000000.0,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
    ))  # fmt: skip
    torch.manual_seed(0)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=384, d_model=32, d_kv=8, d_ff=37,
                                             num_layers=1, num_heads=4,
                                             relative_attention_num_buckets=8))  # fmt: skip
    torch.manual_seed(0)
    image_encoder = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=12, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        image_size=32, patch_size=8,
    ))  # fmt: skip
    return HunyuanVideo15ImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        # The 480p I2V flow shift (the authors' table); 7.0 is the 720p one.
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=ByT5Tokenizer(),  # byte-level: it has no vocabulary file to fetch
        guider=ClassifierFreeGuidance(guidance_scale=6.0),
        image_encoder=image_encoder,
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
    )


def build_wan():
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    text_encoder, tokenizer = _t5()
    return WanImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
    )


def _wan_transformer(in_channels: int, out_channels: int, image_dim: int | None, cls=None):
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    return (cls or WanTransformer3DModel)(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=image_dim,
    )


def _flow_unipc(shift: float):
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
    )


def build_wan22_ti2v():
    """Wan 2.2 TI2V-5B's layout: the 48-channel patchified VAE (16x spatial), timestep per
    latent frame, no CLIP image encoder."""
    import torch
    from diffusers import AutoencoderKLWan, WanImageToVideoPipeline

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )
    text_encoder, tokenizer = _t5()
    return WanImageToVideoPipeline(
        transformer=_wan_transformer(48, 48, None),
        vae=vae,
        scheduler=_flow_unipc(5.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        expand_timesteps=True,
    )


def build_wan22_a14b():
    """Wan 2.2 I2V-A14B's layout: two transformers (high- and low-noise experts) switched at
    boundary_ratio, no CLIP image encoder."""
    import torch
    from diffusers import AutoencoderKLWan, WanImageToVideoPipeline

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])  # fmt: skip
    text_encoder, tokenizer = _t5()
    return WanImageToVideoPipeline(
        transformer=_wan_transformer(36, 16, None),
        transformer_2=_wan_transformer(36, 16, None),
        vae=vae,
        scheduler=_flow_unipc(5.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        boundary_ratio=0.875,
    )


def build_skyreels():
    """SkyReels-V2 I2V: a Wan-style transformer with the CLIP image encoder, UniPC flow scheduler."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        SkyReelsV2ImageToVideoPipeline,
        SkyReelsV2Transformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])  # fmt: skip
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                         num_attention_heads=2, image_size=32, intermediate_size=16, patch_size=1)
    )  # fmt: skip
    text_encoder, tokenizer = _t5()
    return SkyReelsV2ImageToVideoPipeline(
        transformer=_wan_transformer(36, 16, 4, cls=SkyReelsV2Transformer3DModel),
        vae=vae,
        # 8.0 is the text-to-video shift; the catalog sets image-to-video's 5.0 at load.
        scheduler=_flow_unipc(8.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
    )


BUILDERS = {
    "svd": build_svd,
    "ltx": build_ltx,
    "ltx2": build_ltx2,
    "cogvideox": build_cogvideox,
    "cogvideox1.5": build_cogvideox15,
    "hunyuan15": build_hunyuan15,
    "wan": build_wan,
    "wan2.2-ti2v": build_wan22_ti2v,
    "wan2.2-a14b": build_wan22_a14b,
    "skyreels": build_skyreels,
}


def save_tiny(kind: str, folder: str | Path, variant: str | None = None) -> Path:
    """Build the tiny pipeline of one kind and save it as a diffusers folder."""
    folder = Path(folder)
    BUILDERS[kind]().save_pretrained(folder, variant=variant)
    return folder


_FOLDERS: dict[str, Path] = {}


def tiny_folder(kind: str) -> Path:
    """The saved tiny pipeline of a kind (a family, or one of Wan 2.2's layouts), built once per session."""
    if kind not in _FOLDERS:
        import tempfile

        base = Path(tempfile.mkdtemp(prefix=f"tiny-{kind}-"))
        _FOLDERS[kind] = save_tiny(kind, base / kind)
    return _FOLDERS[kind]


def save_tiny_depth_anything(folder: str | Path) -> Path:
    """A random-weight Depth Anything V2 with the real architecture, small enough for a test."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                            intermediate_size=64, image_size=56, patch_size=14,
                            out_features=["stage1", "stage2", "stage3", "stage4"],
                            reshape_hidden_states=False)  # fmt: skip
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32,
                                 patch_size=14, neck_hidden_sizes=[16, 16, 16, 16],
                                 fusion_hidden_size=16, head_hidden_size=8)  # fmt: skip
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True,
                      ensure_multiple_of=14).save_pretrained(folder)  # fmt: skip
    return Path(folder)


def in_hub_cache(cache: Path, repo: str, build) -> Path:
    """Lay a model out exactly as huggingface_hub caches a download of repo: build(snapshot)."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = Path(cache) / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    build(snapshot)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return snapshot
