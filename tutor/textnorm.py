"""Text normalisation for matching Chinese/English technical answers: canonical terms, tokens, n-grams.

Design: candidates write 归一化, normalization, norm, 标准化 for the same idea, mix Chinese and English
freely ("BN 在 batch 维算 mean 和 var"), and write formulas as √d_k, 根号dk or sqrt(d_k). We map all of
these onto one canonical vocabulary in three passes: (1) the project glossary shared with retrieval
(`tutor.text.canonicalize`: domain terms such as LN/层归一化/layer norm), (2) our phrase rewrites on the
NFKC-normalised, lower-cased text (formula spellings, multi-word English), (3) token synonyms after
segmentation: the general vocabulary of answers (方差/variance, 均值/mean/平均, 增大/变大/increase) that a
retrieval glossary deliberately leaves out. Chinese is segmented by a *private* `tutor.segment.Segmenter` (jieba) with the domain terms added,
so the retriever's dictionary is never changed by the grader. Character bigrams of the Chinese
text are offered as a paraphrase-tolerant second signal (jieba splits 特征维度/特征维 differently; bigrams
do not care).

Trade-offs: the synonym table is hand-written and finite. It covers the vocabulary of the interview
syllabus; a term outside it still matches itself exactly, through bigrams (Chinese) or a crude suffix
stemmer (English). Negation is marked per token (the token directly after 不/没有/not ...), which is
cheap and conservative: it finds "LayerNorm 依赖 batch" against "LayerNorm 不依赖 batch" and misses
subtler contradictions. This module knows nothing about entries or grades; it is a bottom-layer utility.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass

from tutor.segment import Segmenter
from tutor.text import canonicalize as glossary_canonicalize

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
CJK_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
# English words (with inner - + . _), numbers (with % or decimals), single math symbols.
LATIN_TOKEN_RE = re.compile(r"[a-z][a-z0-9_]*(?:[-+][a-z0-9_]+)*|\d+(?:\.\d+)?%?|[γβεσμαλθπ∑√×]")
CLAUSE_SPLIT_RE = re.compile(r"[^，,。；;！!？?\n、:：]+")

# (pattern, replacement) applied in order to lower-cased NFKC text. Replacements are padded with
# spaces so they become separate tokens.
_PHRASES_RAW: list[tuple[str, str]] = [
    (r"layer[\s_-]*norm(?:alization|alisation)?|⟨ln⟩|层归一化", " layernorm "),
    (r"batch[\s_-]*norm(?:alization|alisation)?|⟨bn⟩|批归一化|批量归一化", " batchnorm "),
    (r"rms[\s_-]*norm(?:alization)?|均方根归一化", " rmsnorm "),
    (r"group[\s_-]*norm(?:alization)?", " groupnorm "),
    (r"pre[\s_-]*(?:norm|ln|layernorm)", " prenorm "),
    (r"post[\s_-]*(?:norm|ln|layernorm)", " postnorm "),
    (r"kv[\s_-]*cache|key[\s_-]*value[\s_-]*cache|键值缓存", " kvcache "),
    (r"multi[\s_-]*head[\s_-]*attention|⟨mha⟩|多头自?注意力", " mha "),
    (r"multi[\s_-]*query[\s_-]*attention|⟨mqa⟩", " mqa "),
    (r"grouped[\s_-]*query[\s_-]*attention|⟨gqa⟩", " gqa "),
    (r"self[\s_-]*attention|自注意力", " selfattention "),
    (r"cross[\s_-]*attention|交叉注意力", " crossattention "),
    (r"flash[\s_-]*attention", " flashattention "),
    (r"dot[\s_-]*product|inner[\s_-]*product|点乘|内积|点积", " 点积 "),
    (r"one[\s_-]*hot|独热", " onehot "),
    (r"running[\s_-]*(?:mean|var|variance|stat(?:istic)?s?|average)|moving[\s_-]*average|滑动平均|移动平均",
     " runningstat "),
    (r"learning[\s_-]*rate|学习率|⟨lr⟩", " learningrate "),
    (r"fine[\s_-]*tun(?:e|ed|ing)|finetun(?:e|ed|ing)|微调", " finetune "),
    (r"pre[\s_-]*train(?:ed|ing)?|预训练", " pretrain "),
    (r"mixture[\s_-]*of[\s_-]*experts?|⟨moe⟩|混合专家", " moe "),
    (r"position(?:al)?[\s_-]*(?:encoding|embedding)s?|位置编码|位置嵌入", " 位置编码 "),
    (r"rotary[\s_-]*(?:position(?:al)?[\s_-]*)?(?:embedding|encoding)s?|⟨rope⟩|旋转位置编码", " rope "),
    (r"gradient[\s_-]*vanish(?:ing)?|vanishing[\s_-]*gradients?", " 梯度消失 "),
    (r"gradient[\s_-]*explo(?:sion|ding)|exploding[\s_-]*gradients?", " 梯度爆炸 "),
    (r"cross[\s_-]*entropy|交叉熵", " 交叉熵 "),
    (r"⟨kl(?:[\s_-]*(?:divergence|散度))?⟩?", " kl "),
    (r"reward[\s_-]*model|奖励模型", " rewardmodel "),
    (r"critic[\s_-]*model|价值模型|critic", " critic "),
    (r"low[\s_-]*rank|低秩", " 低秩 "),
    (r"mixed[\s_-]*precision|混合精度", " 混合精度 "),
    (r"half[\s_-]*precision|半精度", " 半精度 "),
    (r"top[\s_-]*k", " topk "),
    (r"top[\s_-]*p|nucleus[\s_-]*sampling|核采样", " topp "),
    (r"causal[\s_-]*mask|因果掩码", " causalmask "),
    (r"residual[\s_-]*connection|skip[\s_-]*connection|残差连接|跳跃连接", " 残差连接 "),
    (r"feed[\s_-]*forward(?:[\s_-]*network)?|⟨ffn⟩|前馈网络|前馈层", " ffn "),
    (r"scaling[\s_-]*laws?|缩放定律|规模定律", " scalinglaw "),
    (r"in[\s_-]*context[\s_-]*learning|上下文学习", " icl "),
    (r"chain[\s_-]*of[\s_-]*thought|⟨cot⟩|思维链", " cot "),
    (r"hidden[\s_-]*(?:size|dim(?:ension)?)|隐藏维度?|隐层维度", " 隐藏维 "),
    # formulas: √d_k, sqrt(d_k), 根号 dk -> "sqrt dk"; QK^T -> "qkt"
    (r"开根号|开方|根号|平方根|√|sqrt(?!d⟩)", " sqrt "),  # the glossary's "sqrtd" stays whole
    (r"⟨d[\s_]*\{?\s*k\s*\}?⟩", " dk "),
    (r"⟨d[\s_]*\{?\s*model\s*\}?⟩", " dmodel "),
    (r"⟨q\s*k\s*\^?\s*\{?\s*t\s*\}?⟩|q\s*乘\s*k\s*的?转置|q\s*k\s*转置", " qkt "),
    (r"σ\s*\^?\s*2|sigma\s*\^?\s*2", " 方差 "),  # NFKC turns ² into 2
    (r"⟨o\s*\(\s*n\s*\^?\s*2\s*(?:[·*]?\s*d)?\s*\)", " 平方 "),  # O(n²), O(n^2 d): quadratic in length
    (r"⟨o\s*\(\s*n\s*\)", " 线性 "),  # O(n): linear in length
]
# ⟨ and ⟩ mark ASCII word edges (`\\b` would not fire between a Chinese character and a letter).
PHRASES = [(re.compile(p.replace("⟨", r"(?<![a-z0-9])").replace("⟩", r"(?![a-z0-9])")), r) for p, r in _PHRASES_RAW]

# canonical -> surface forms (after lower-casing). Canonical forms are what grades compare.
_SYNONYM_GROUPS: dict[str, list[str]] = {
    "归一化": ["normalization", "normalize", "normalise", "normaliz", "normalis", "norm", "标准化", "规范化", "归一"],
    "注意力": ["attention", "atten", "attn", "注意力机制"],
    "方差": ["variance", "var", "方差值"],
    "标准差": ["std", "standard", "deviation", "σ", "sigma"],
    "均值": ["mean", "average", "avg", "平均", "平均值", "平均数", "期望", "μ", "mu", "expectation"],
    "梯度": ["gradient", "grad", "gradients"],
    "维": ["维度", "dimension", "dim", "dimens", "维数", "axis", "轴"],
    "特征": ["feature", "featur", "通道", "channel"],
    "样本": ["sample", "sampl", "example", "instance", "每条数据", "数据点"],
    "批": ["batch", "批次", "批量", "mini-batch", "minibatch", "micro-batch"],
    "序列": ["sequence", "sequenc", "seq", "句子", "sentence"],
    "长度": ["length", "len", "长短"],
    "参数": ["parameter", "param", "params", "参数量", "weights"],
    "权重": ["weight"],
    "偏置": ["bias", "偏移", "平移参数", "β", "beta"],
    "缩放": ["scale", "scal", "scaling", "缩小", "放缩", "γ", "gamma"],
    "训练": ["train", "training", "trained"],
    "推理": ["inference", "infer", "预测阶段", "推断", "serving", "部署"],
    "统计": ["statistic", "statist", "stats", "统计量"],
    "计算": ["compute", "comput", "calculate", "calcul", "算", "求", "computation"],
    "依赖": ["depend", "rely", "relies", "依靠", "受影响", "影响"],
    "一致": ["consistent", "same", "相同", "一样", "一致性"],
    "饱和": ["saturate", "saturat", "saturation"],
    "接近": ["close", "approach", "趋近", "趋于", "逼近", "约等于", "几乎"],
    "增大": ["increase", "increas", "grow", "larger", "bigger", "变大", "增加", "增长", "上升", "升高", "膨胀", "越大", "越来越大", "升", "涨",
             "变多", "上涨"],
    "减小": ["decrease", "decreas", "reduce", "reduc", "smaller", "shrink", "变小", "减少", "降低", "下降", "越小", "缩减", "降",
             "变少", "减"],
    "线性": ["linear", "linearly", "线性地", "成正比", "正比"],
    "平方": ["quadratic", "quadratically", "二次", "平方级"],
    "消失": ["vanish", "vanishing"],
    "稳定": ["stable", "stabl", "stability", "稳"],
    "矩阵": ["matrix", "matric", "matrices"],
    "向量": ["vector", "vec"],
    "嵌入": ["embedding", "embed", "embeddings"],
    "模型": ["model"],
    "层": ["layer", "层数"],
    "输入": ["input"],
    "输出": ["output"],
    "激活": ["activation", "activat", "激活值"],
    "损失": ["loss", "损失函数", "loss函数"],
    "优化器": ["optimizer", "optimiz"],
    "概率": ["probability", "probabl", "prob", "probs"],
    "分布": ["distribution", "distribut"],
    "温度": ["temperature", "temp"],
    "采样": ["sampling", "采样方法"],
    "解码": ["decode", "decoding", "decod"],
    "编码器": ["encoder", "encod"],
    "解码器": ["decoder"],
    "掩码": ["mask", "masking", "遮挡", "遮盖", "屏蔽", "masked"],
    "因果": ["causal"],
    "自回归": ["autoregressive", "auto-regressive", "逐token", "逐个token"],
    "缓存": ["cache", "caching", "缓存下来"],
    "显存": ["memory", "gpu memory", "内存", "vram"],
    "吞吐": ["throughput", "吞吐量"],
    "延迟": ["latency", "时延"],
    "并行": ["parallel", "parallelism", "并行化"],
    "量化": ["quantization", "quantiz", "quantis"],
    "蒸馏": ["distillation", "distil", "distill"],
    "剪枝": ["pruning", "prune", "prun"],
    "稀疏": ["sparse", "sparsity"],
    "专家": ["expert", "experts"],
    "路由": ["router", "routing", "rout", "门控", "gate", "gating"],
    "秩": ["rank"],
    "奖励": ["reward"],
    "策略": ["policy"],
    "偏好": ["preference", "prefer"],
    "对齐": ["alignment", "align"],
    "幻觉": ["hallucination", "hallucinat"],
    "检索": ["retrieval", "retriev", "召回", "retrieve"],
    "上下文": ["context", "语境"],
    "外推": ["extrapolation", "extrapolat"],
    "插值": ["interpolation", "interpolat"],
    "频率": ["frequency", "frequenc", "freq"],
    "旋转": ["rotate", "rotat", "rotation"],
    "相对位置": ["relative", "相对"],
    "绝对位置": ["absolute", "绝对"],
    "复杂度": ["complexity", "complex"],
    "精度": ["precision", "accuracy"],
    "溢出": ["overflow", "上溢"],
    "下溢": ["underflow"],
    "词表": ["vocabulary", "vocab", "词典", "词汇表"],
    "分词": ["tokenize", "tokeniz", "tokenizer", "切词"],
    "对数": ["log", "logarithm", "取对数"],
    "指数": ["exponent", "exp", "exponential"],
    "过拟合": ["overfit", "overfitting"],
    "收敛": ["converge", "converg", "convergence"],
    "更快": ["faster", "speed", "speedup", "加速", "快", "提速"],
    "更慢": ["slower", "慢", "变慢"],
    "效果": ["performance", "表现", "性能"],
    "不变性": ["invariance", "invarian"],
    "大": ["large", "big", "很大", "过大", "太大", "大了"],
    "小": ["small", "很小", "过小", "太小", "小了"],
    "原因": ["reason", "because", "why"],
    "区别": ["difference", "differ", "不同点", "差异", "不同"],
    "公式": ["formula", "equation"],
    "头": ["head", "heads", "头数"],
    "token": ["tokens", "词元"],
    "除以": ["divide", "divid", "除", "除掉", "除一个", "除上"],
    "乘以": ["multiply", "multipl", "乘", "乘上"],
    "均匀": ["uniform", "平均分配", "均匀分布", "平坦", "flat"],
    "梯度消失": ["梯度很小", "梯度几乎为0", "梯度趋于0", "梯度接近0"],
}
SYNONYMS: dict[str, str] = {}
for _canon, _forms in _SYNONYM_GROUPS.items():
    SYNONYMS[_canon] = _canon
    for _f in _forms:
        SYNONYMS.setdefault(_f, _canon)

CN_DIGITS = {"零": "0", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6",
             "七": "7", "八": "8", "九": "9", "十": "10"}

NEGATIONS = {"不", "没", "没有", "无", "无需", "不是", "不会", "不用", "不需要", "并不", "未", "非", "别", "不再",
             "不必", "并非", "毫无", "not", "no", "never", "without", "dont", "doesnt", "isnt", "cannot", "cant",
             "wont", "arent", "neither", "nor"}
NEGATION_AUX = {"是", "会", "需要", "要", "用", "能", "可以", "太", "很", "再", "必", "一定", "需", "be", "is",
                "are", "does", "do", "need", "really"}
# Tokens that start with 不/没/无 but are words of their own, not a negation of the rest.
NEGATION_WORDS_KEPT = {"不同", "不断", "不仅", "无论", "不少", "不过", "不够", "无关", "不变", "不变性", "无穷",
                       "不稳定", "不足", "不一定", "无穷大", "不然", "要不然", "不管", "不久", "非常", "非线性", "非要",
                       "非得", "无损", "无监督", "非对称", "不对称", "非零", "不一致", "不确定", "不确定性", "不平衡",
                       "不均衡", "不连续", "不可导", "无偏", "不可微"}

# Function words: their presence marks real sentences (relations), their absence keyword lists.
FUNCTION_WORDS = {
    "的", "了", "是", "在", "和", "与", "跟", "就", "也", "都", "会", "把", "被", "对", "这", "那", "这个", "那个",
    "它", "其", "为", "以", "及", "或", "或者", "而", "而且", "但", "但是", "因为", "所以", "如果", "那么",
    "然后", "就是", "其实", "让", "使", "使得", "导致", "从而", "因此", "由于", "通过", "用", "来", "去", "上",
    "下", "中", "里", "时", "时候", "要", "能", "可以", "需要", "得", "地", "着", "过", "还", "又", "再",
    "比", "更", "最", "很", "太", "只", "只有", "每", "每个", "一个", "各", "所", "之", "后", "前", "等于",
    "就会", "之后", "之前", "相当于", "意味着", "也就是", "也就是说", "这样", "这种", "这些", "那些", "我们",
    "我", "你", "他们", "它们", "自己", "什么", "怎么", "为什么", "有", "没有", "不", "没", "吧", "呢", "啊",
    "嘛", "么", "吗", "嗯", "呃", "然后呢", "的话", "因为是", "主要", "主要是", "一般", "通常", "而是", "不是",
    "the", "a", "an", "is", "are", "was", "be", "been", "of", "to", "in", "on", "for", "with", "by", "and",
    "or", "but", "so", "because", "that", "this", "it", "its", "as", "at", "from", "which", "when", "then",
    "than", "if", "into", "each", "per", "we", "you", "they", "can", "will", "would", "should", "makes",
    "make", "has", "have", "do", "does", "not", "no", "more", "less", "very", "too", "only", "also",
}
# Function words that carry structure (copula, connectives, prepositions, pronouns): their share of the
# tokens tells a sentence from a keyword list. Positional and quantity words (上, 之前, 每个) do not.
RELATION_WORDS = FUNCTION_WORDS - {"上", "下", "中", "里", "时", "时候", "前", "后", "之前", "之后", "一个", "每",
                                   "每个", "各", "所", "之", "最", "更", "很", "太", "只", "只有", "主要", "一般",
                                   "通常", "吧", "呢", "啊", "嘛", "么", "吗", "嗯", "呃", "per", "each", "more",
                                   "less", "very", "too", "only"}
# Not content: function words plus fillers and question words. Content tokens are what key points match.
STOPWORDS = FUNCTION_WORDS | {
    "一下", "一些", "有些", "比如", "例如", "就是说", "可能", "应该", "大概", "感觉", "觉得", "知道", "记得", "好像",
    "东西", "方面", "问题", "情况", "作用", "方法", "方式", "地方", "部分", "时候", "这里", "那里", "的时候", "面试",
    "回答", "答案", "题目", "哪些", "哪里", "如何", "怎样", "多少", "好处", "优点", "缺点", "好", "坏", "点",
    "呀", "哦", "哈", "啦", "嗯嗯", "um", "uh", "like", "just", "what", "how", "why", "there", "these", "those",
    "随", "随着", "像", "那样", "这样子", "一样的", "所谓", "叫", "叫做", "称为", "一种", "一般来说", "简单", "来说",
    "across", "over", "under", "about", "between", "within", "all", "any", "some", "other", "such", "get", "gets",
    "use", "used", "using", "uses", "i", "me", "my", "our", "their", "them", "there", "here", "where", "who",
    "basically", "actually", "really", "thing", "things", "way", "kind", "sort", "yeah", "ok", "okay", "well",
}

# Chinese technical terms jieba should keep whole (besides the canonical forms above).
DOMAIN_TERMS = [
    "多头注意力", "自注意力", "交叉注意力", "注意力机制", "位置编码", "旋转位置编码", "相对位置", "绝对位置", "梯度消失",
    "梯度爆炸", "梯度裁剪", "残差连接", "层归一化", "批归一化", "词表", "分词器", "前馈网络",
    "激活函数", "损失函数", "交叉熵", "困惑度", "显存", "混合精度", "半精度", "单精度", "量化", "反量化", "蒸馏",
    "剪枝", "低秩", "秩", "奖励模型", "价值函数", "优势函数", "策略梯度", "重要性采样", "裁剪", "偏好数据",
    "参考模型", "自回归", "因果掩码", "缓存", "吞吐", "长上下文", "外推", "插值", "温度系数", "采样", "贪心解码",
    "束搜索", "幻觉", "检索增强", "向量数据库", "召回率", "精确率", "准确率", "灾难性遗忘", "涌现", "过拟合",
    "欠拟合", "正则化", "学习率", "预热", "余弦退火", "数据并行", "张量并行", "流水线并行", "专家并行", "零冗余",
    "优化器状态", "重计算", "梯度累积", "稀疏", "专家", "路由", "负载均衡", "缩放不变性", "平移不变性", "均方根",
    "方差", "标准差", "均值", "点积", "饱和", "均匀", "线性", "二次", "复杂度", "矩阵乘法", "转置", "维度", "偏置",
    "非负", "非零", "非线性", "不依赖", "不需要", "不可学习", "可学习",
]


# Words that put what follows in the negative without a 不 ("防止看到未来" = "不能看到未来"); a key point
# containing one is never used for a polarity contradiction (too easy to misread).
NEGATION_LIKE = NEGATIONS | {"防止", "避免", "阻止", "禁止", "杜绝", "只", "只能", "仅", "仅仅", "只有", "无法", "不能",
                             "而非", "而不是", "去掉", "去除", "省掉", "丢弃", "取消", "代替", "取代", "prevent",
                             "avoid", "only", "instead", "remove", "drop"}
FORMULA_TOKEN_RE = re.compile(r"^(?:[a-z]|[a-z]*[_^+][a-z0-9_^+]*|[a-z]\d+)$")


def is_formula_token(tok: str) -> bool:
    """Symbols from formulas (x_l, l+1, f, j): weak evidence, candidates rarely write them alike."""
    return tok.isascii() and bool(FORMULA_TOKEN_RE.match(tok)) and tok not in SYNONYMS


@dataclass(frozen=True)
class Token:
    text: str  # canonical form
    surface: str  # as written (lower-cased)
    negated: bool  # directly preceded by a negation word in the same clause
    function: bool  # a function word (counts towards "this is a sentence")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


@functools.lru_cache(maxsize=8192)  # key points and reference sentences recur; answers mostly do not
def canonical_text(text: str) -> str:
    """NFKC, lower case, the shared glossary (`tutor/data/glossary.txt`, also used by retrieval), then
    our phrase rewrites (formulas, general EN/ZH vocabulary the glossary leaves out)."""
    out = glossary_canonicalize(nfkc(text))
    for pattern, repl in PHRASES:
        out = pattern.sub(repl, out)
    return out


_SUFFIXES = ("izations", "ization", "isation", "ations", "ation", "izes", "ized", "izing", "ize", "ings", "ing",
             "ies", "ed", "es", "s", "ly")


def stem(word: str) -> str:
    """A crude English suffix stripper, enough to join normalize/normalizes/normalization.

    A stripped form that is a known synonym wins over stripping further."""
    if word in SYNONYMS:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and word[: -len(suffix)] in SYNONYMS:
            return word[: -len(suffix)]
    if word.endswith("ss"):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def canonical_token(surface: str) -> str:
    if surface in SYNONYMS:
        return SYNONYMS[surface]
    if surface in CN_DIGITS:
        return CN_DIGITS[surface]
    if surface.isascii() and surface.isalpha():
        s = stem(surface)
        return SYNONYMS.get(s, s)
    return surface


def cjk_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha() or CJK_RE.match(c)]
    if not letters:
        return 0.0
    return sum(1 for c in letters if CJK_RE.match(c)) / len(letters)


def clauses(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the clauses of `text` (split at Chinese/English punctuation)."""
    return [(m.start(), m.end()) for m in CLAUSE_SPLIT_RE.finditer(text) if m.group().strip()]


class Analyzer:
    """Segments text into canonical tokens. One instance per process (see `get_analyzer`)."""

    def __init__(self, extra_terms: list[str] | tuple[str, ...] = ()):
        self.extra_terms = tuple(sorted(extra_terms))  # part of what the analysis depends on
        words = set(DOMAIN_TERMS) | {c for c in _SYNONYM_GROUPS if CJK_RE.search(c)}
        words |= {f for forms in _SYNONYM_GROUPS.values() for f in forms if CJK_RE.search(f)}
        words |= {t for t in extra_terms if CJK_RE.search(t) and 2 <= len(t) <= 8}
        words |= NEGATION_WORDS_KEPT  # 不一致, 非零 ... stay whole instead of reading as 不 + 一致
        # (a single character with a big freq would break 大小)
        self._memo: dict[tuple[str, bool], tuple[Token, ...]] = {}
        self._segmenter = Segmenter({w: 2_000_000 for w in sorted(words) if len(w) >= 2})

    def _surface_tokens(self, canon: str) -> list[str]:
        out: list[str] = []
        pos = 0
        for m in CJK_RUN_RE.finditer(canon):
            out.extend(LATIN_TOKEN_RE.findall(canon[pos:m.start()]))
            out.extend(self._segmenter.cut(m.group(), hmm=False))
            pos = m.end()
        out.extend(LATIN_TOKEN_RE.findall(canon[pos:]))
        return out

    def tokens(self, text: str, canonicalized: bool = False) -> list[Token]:
        # Memoised: the grader analyses the same key points and reference sentences for every answer.
        # Tokens are frozen; each caller gets its own list.
        key = (text, canonicalized)
        cached = self._memo.get(key)
        if cached is None:
            if len(self._memo) > 8192:  # bounded: a long-running server sees many distinct answers
                self._memo.clear()
            cached = self._memo[key] = tuple(self._tokens(text, canonicalized))
        return list(cached)

    def _tokens(self, text: str, canonicalized: bool) -> list[Token]:
        canon = text if canonicalized else canonical_text(text)
        result: list[Token] = []
        negate = False
        for surface in self._surface_tokens(canon.replace("'", "")):
            parts = [surface]
            if (len(surface) >= 2 and surface[0] in "不没无非" and surface not in NEGATION_WORDS_KEPT
                    and surface not in NEGATIONS and surface not in SYNONYMS):
                parts = [surface[0], surface[1:]]
            for part in parts:
                if part in NEGATIONS:
                    negate = True
                    result.append(Token(part, part, False, True))
                elif part in NEGATION_AUX:  # 不[是/会/需要] X: the negation reaches X
                    result.append(Token(part, part, False, True))
                else:
                    function = part in FUNCTION_WORDS
                    result.append(Token(canonical_token(part), part, negate and not function, function))
                    negate = False
        return result

    def content_terms(self, text: str) -> list[Token]:
        return [t for t in self.tokens(text) if t.text not in STOPWORDS and not t.function
                and t.surface not in STOPWORDS and t.text.strip()]


def cjk_bigrams(canon: str) -> set[str]:
    grams: set[str] = set()
    for run in CJK_RUN_RE.findall(canon):
        grams.update(run[i:i + 2] for i in range(len(run) - 1))
    return grams


def compact(canon: str) -> str:
    """Canonical text without spaces and punctuation, for substring tests of multi-character terms."""
    return re.sub(r"[\s\W_]+", "", canon)


_ANALYZER: Analyzer | None = None
_ANALYZER_TERMS: frozenset[str] = frozenset()
_LOCK = threading.Lock()


def get_analyzer(extra_terms: list[str] | tuple[str, ...] = ()) -> Analyzer:
    """Shared analyzer; rebuilt only when new domain terms appear (a dictionary load: ~0.1 s with rjieba, ~0.8 s with jieba)."""
    global _ANALYZER, _ANALYZER_TERMS
    with _LOCK:
        terms = frozenset(extra_terms)
        if _ANALYZER is None or not terms <= _ANALYZER_TERMS:
            _ANALYZER_TERMS = _ANALYZER_TERMS | terms
            _ANALYZER = Analyzer(sorted(_ANALYZER_TERMS))
        return _ANALYZER
