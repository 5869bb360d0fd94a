"""Build the keyterm evaluation set in tests/fixtures/keyterms: synthesize candidates, keep what tiny.en misses.

    PYTHONPATH=src .venv/bin/python scripts/make_keyterm_set.py [--out tests/fixtures/keyterms] [--work DIR]

Needs Debian's festival + festvox-us-slt-hts (`text2wave`) and flite; the WAVs are committed, so
nothing else (CI, the tests, `voxrelay bench`) needs them.

1. Candidates. Every sentence of SENTENCES (dictation with names, product words and medical
   jargon; each names its keyterms) is synthesized with one voice, round robin over VOICES:
   festival's HTS voice cmu_us_slt_arctic_hts (the most natural) every other sentence, flite's
   rms, slt and awb in turn for the rest. The TTS reads `SAY` spellings of the words it would
   otherwise spell out or mangle ("PostgreSQL" -> "post gress Q L"): the speaker says the word
   as people say it, the reference keeps the written form. Audio goes to 16 kHz mono 16-bit
   PCM (soxr), with 0.3 s of silence before and 0.5 s after. Corpus clips of
   tests/fixtures/audio with names in them are candidates too (CORPUS).
2. Selection. Each candidate is decoded by the local engine as a live stream cut after its last
   word and stopped (`voxrelay.bench.offline.stream_finals`: the same finals as the gateway,
   without a clock), without keyterms and with its keyterms. A candidate is kept when tiny.en
   misses at least one of its keyterms without help (`voxrelay.bench.keyterms.term_found` on
   the joined finals); all its keyterms stay in refs.tsv. Of the synthesized ones, only the
   first `--keep` (25) in the order SENTENCES lists them are kept, so that the WAVs stay under
   4 MB; that order was written before any decoding, and the results with keyterms play no part
   in the choice. `candidates.tsv` records every candidate with both results and its verdict
   (kept, over the cap, all found), so the recall over all candidates can be reported too.

Deterministic: the same TTS packages give the same audio, and the decode is greedy.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import soxr

from voxrelay.bench.common import Clip, speech_bounds
from voxrelay.bench.keyterms import recall_counts
from voxrelay.bench.offline import stream_finals
from voxrelay.client import load_audio

RATE = 16000
ROOT = Path(__file__).resolve().parents[1]

VOICES = [
    "festival:cmu_us_slt_arctic_hts",
    "flite:rms",
    "festival:cmu_us_slt_arctic_hts",
    "flite:slt",
    "festival:cmu_us_slt_arctic_hts",
    "flite:awb",
]

# (sentence as written = the reference, its keyterms)
SENTENCES: list[tuple[str, tuple[str, ...]]] = [
    ("We fine-tuned AntiBERTa on the new antibody data last night.", ("AntiBERTa",)),
    ("ABlooper predicts the loop structures in a few seconds.", ("ABlooper",)),
    ("Deploy the service to Kubernetes and check the Grafana dashboard.", ("Kubernetes", "Grafana")),
    ("The model was trained in PyTorch and exported with ONNX.", ("PyTorch", "ONNX")),
    ("Put Nginx in front of the app and let Terraform create the load balancer.", ("Nginx", "Terraform")),
    ("Siobhan will review the pull request before Friday.", ("Siobhan",)),
    ("Please forward the invoice to Linh Nguyen in accounting.", ("Linh Nguyen",)),
    ("Saoirse and Niamh are presenting the results tomorrow.", ("Saoirse", "Niamh")),
    ("The orchestra opens with a symphony by Dvořák.", ("Dvořák",)),
    ("Order twenty Xiaomi phones for the test lab.", ("Xiaomi",)),
    ("Anthropic released a new model this morning.", ("Anthropic",)),
    ("Use ffmpeg to convert the recording to sixteen kilohertz.", ("ffmpeg",)),
    ("The data lives in PostgreSQL and the cache in Redis.", ("PostgreSQL", "Redis")),
    ("Every backup must be encrypted to stay HIPAA compliant.", ("HIPAA",)),
    ("The patient takes ibuprofen for pain and metoprolol for her blood pressure.", ("ibuprofen", "metoprolol")),
    ("Start atorvastatin at twenty milligrams and stop the lisinopril.", ("atorvastatin", "lisinopril")),
    ("Prescribe amoxicillin for ten days and omeprazole with breakfast.", ("amoxicillin", "omeprazole")),
    ("The echocardiogram showed mild tachycardia.", ("echocardiogram", "tachycardia")),
    ("She was switched from warfarin to apixaban last spring.", ("warfarin", "apixaban")),
    ("Krzysztof and Wojciech will join the call from Warsaw.", ("Krzysztof", "Wojciech")),
    ("Send the contract to Oluwaseun and copy Ngozi.", ("Oluwaseun", "Ngozi")),
    ("Tadhg booked the room for Ciarán's talk.", ("Tadhg", "Ciarán")),
    ("Joaquin asked Xiaoling for the survey results.", ("Joaquin", "Xiaoling")),
    ("Our services talk gRPC and the messages are protobuf.", ("gRPC", "protobuf")),
    ("Istio sidecars now run next to every Envoy proxy.", ("Istio", "Envoy")),
    ("Install the chart with Helm and let Argo CD sync it.", ("Helm", "Argo CD")),
    ("Datadog alerts go to the on call channel and logs to Splunk.", ("Datadog", "Splunk")),
    ("We load the events into Snowflake and train in Databricks.", ("Snowflake", "Databricks")),
    ("The front end moved from React to Svelte with Vite.", ("Svelte", "Vite")),
    ("The API is written with FastAPI and served by uvicorn.", ("FastAPI", "uvicorn")),
    ("Validate the payload with Pydantic before it reaches SQLAlchemy.", ("Pydantic", "SQLAlchemy")),
    ("Celery workers read their jobs from RabbitMQ.", ("Celery", "RabbitMQ")),
    ("File a ticket in Jira and link the Confluence page.", ("Jira", "Confluence")),
    ("The designs are in Figma and the styles use Tailwind.", ("Figma", "Tailwind")),
    ("Sign in through Okta and the tokens come from Auth0.", ("Okta", "Auth0")),
    ("Capture the traffic with tcpdump and open it in Wireshark.", ("tcpdump", "Wireshark")),
    ("The Android app is built with Kotlin and Gradle.", ("Kotlin", "Gradle")),
    ("We trace the kernel with eBPF and compile the probes with Clang.", ("eBPF", "Clang")),
    ("The async runtime is Tokio and the web server is Axum.", ("Tokio", "Axum")),
    ("Download the weights from Hugging Face and quantize them with llama.cpp.", ("Hugging Face", "llama.cpp")),
    ("Compute the embeddings with NumPy and cluster them with scikit-learn.", ("NumPy", "scikit-learn")),
    ("The GDPR request came in through Zendesk.", ("GDPR", "Zendesk")),
    ("Renew the certificates in Cloudflare before they expire.", ("Cloudflare",)),
    ("Migrate the schema with Alembic after the deploy.", ("Alembic",)),
    ("Rachmaninoff and Tchaikovsky are on the program tonight.", ("Rachmaninoff", "Tchaikovsky")),
    ("Her HbA1c was seven point two last month.", ("HbA1c",)),
    ("Add clopidogrel after the stent and recheck in six weeks.", ("clopidogrel",)),
    ("Levothyroxine is taken in the morning on an empty stomach.", ("Levothyroxine",)),
    ("Aoife is moving to the Supabase team.", ("Aoife", "Supabase")),
    ("The preview deploys run on Vercel.", ("Vercel",)),
    ("Ask Bartosz about the WebAssembly build.", ("Bartosz", "WebAssembly")),
    ("The Qualcomm modem failed the test but the Huawei one passed.", ("Qualcomm", "Huawei")),
    ("Chidi wrote the Flutter version of the app.", ("Chidi", "Flutter")),
    ("The Zig compiler builds the firmware for the Raspberry Pi.", ("Zig", "Raspberry Pi")),
    ("Run Ansible against the staging hosts, then ping Siobhan.", ("Ansible", "Siobhan")),
    ("The Kafka topic feeds the ClickHouse tables.", ("Kafka", "ClickHouse")),
    ("Give paracetamol every six hours and watch for hyponatremia.", ("paracetamol", "hyponatremia")),
    ("Nguyen Van An signed the SOC 2 report.", ("Nguyen Van An", "SOC 2")),
    ("Saoirse fixed the OAuth redirect in the Next.js app.", ("Saoirse", "OAuth", "Next.js")),
    ("Kubectl shows the pod in CrashLoopBackOff again.", ("kubectl", "CrashLoopBackOff")),
]

# How the TTS is told to say a word (the sentence keeps the written form).
SAY = {
    "AntiBERTa": "anti berta",
    "ABlooper": "A B looper",
    "PyTorch": "pie torch",
    "ONNX": "onyx",
    "Nginx": "engine X",
    "Siobhan": "shivawn",
    "Nguyen Van An": "win van ahn",
    "Nguyen": "win",
    "Saoirse": "seersha",
    "Niamh": "neev",
    "Dvořák": "dvorzhahk",
    "Xiaomi": "shao mee",
    "ffmpeg": "F F M peg",
    "PostgreSQL": "post gress Q L",
    "HIPAA": "hippa",
    "Krzysztof": "kshishtof",
    "Wojciech": "voychekh",
    "Oluwaseun": "oh loo wah shay oon",
    "Ngozi": "n go zee",
    "Tadhg": "tige",
    "Ciarán": "keer awn",
    "Joaquin": "wah keen",
    "Xiaoling": "shao ling",
    "gRPC": "G R P C",
    "Argo CD": "argo C D",
    "uvicorn": "U V corn",
    "FastAPI": "fast A P I",
    "SQLAlchemy": "sequel alchemy",
    "RabbitMQ": "rabbit M Q",
    "Auth0": "auth zero",
    "tcpdump": "T C P dump",
    "eBPF": "E B P F",
    "llama.cpp": "llama dot C P P",
    "NumPy": "num pie",
    "scikit-learn": "sy kit learn",
    "GDPR": "G D P R",
    "HbA1c": "H B A one C",
    "Aoife": "eefa",
    "Supabase": "soopa base",
    "Bartosz": "bartosh",
    "Chidi": "chee dee",
    "SOC 2": "sock two",
    "OAuth": "oh auth",
    "Next.js": "next J S",
    "kubectl": "cube control",
    "Kubectl": "cube control",
    "CrashLoopBackOff": "crash loop back off",
    "Linh": "lin",
    "Tokio": "tokyo",
    "Vite": "veet",
}

# Corpus clips (tests/fixtures/audio) with names in them, and those names as keyterms.
CORPUS: list[tuple[str, tuple[str, ...]]] = [
    ("s07_names_message.wav", ("Maria Gonzalez", "Kenji Watanabe")),
    ("s08_names_flight.wav", ("Olivia Brown", "Ahmed Hassan")),
    ("s11_long_paragraph.wav", ("Sarah Mitchell", "Toronto")),
    ("s15_address_navigation.wav", ("Springfield", "Illinois")),
    ("s03_question_weather.wav", ("Chicago",)),
    ("s14_question_distance.wav", ("Paris", "Berlin")),
    ("librivox_sas_0870.wav", ("Dashwood",)),
    ("vctk_p226_001.wav", ("Stella",)),
]


def spoken(text: str) -> str:
    for word in sorted(SAY, key=len, reverse=True):
        text = text.replace(word, SAY[word])
    return text


def synthesize(voice: str, text: str, out: Path, work: Path) -> None:
    """`text` said by `voice` into `out`: 16 kHz mono 16-bit PCM, 0.3 s of silence before and 0.5 s after."""
    engine, name = voice.split(":")
    raw = work / (out.stem + ".raw.wav")
    if engine == "festival":
        txt = work / (out.stem + ".txt")
        txt.write_text(text + "\n")
        subprocess.run(["text2wave", "-eval", f"(voice_{name})", str(txt), "-o", str(raw)], check=True)
    else:
        subprocess.run(["flite", "-voice", name, "-t", text, "-o", str(raw)], check=True)
    with wave.open(str(raw)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    pcm = pcm.reshape(-1, channels).mean(axis=1)
    if rate != RATE:
        pcm = soxr.resample(pcm, rate, RATE, quality="HQ")
    peak = float(np.abs(pcm).max()) or 1.0
    pcm = pcm * min(1.0, 0.9 / peak)  # no clipping after resampling
    pcm = np.concatenate([np.zeros(int(0.3 * RATE)), pcm, np.zeros(int(0.5 * RATE))])
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((pcm.clip(-1, 1) * 32767).astype("<i2").tobytes())


async def decode_all(paths: list[Path], terms: list[tuple[str, ...]]) -> list[tuple[list[str], list[str]]]:
    """Finals of each clip streamed and stopped, (without keyterms, with its keyterms)."""
    from voxrelay.engines.local.engine import LocalEngine

    engine = LocalEngine()
    await engine.start()
    out = []
    try:
        for path, keyterms in zip(paths, terms, strict=True):
            pcm = load_audio(str(path))
            start, end = speech_bounds(pcm)
            cut = Clip(path.name, "", pcm, start, end).trimmed()
            pair = []
            for chosen in ((), keyterms):
                finals = await stream_finals(engine, cut, keyterms=chosen)
                pair.append([f.transcript for f in finals if f.transcript])
            out.append((pair[0], pair[1]))
    finally:
        await engine.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "keyterms"))
    parser.add_argument("--work", help="keep the candidate WAVs here (default: a temporary folder)")
    parser.add_argument("--keep", type=int, default=25, help="keep at most this many synthesized clips (size cap)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="keyterm-candidates-"))
    work.mkdir(parents=True, exist_ok=True)

    audio = ROOT / "tests" / "fixtures" / "audio"
    with open(audio / "refs.tsv", newline="") as f:
        corpus_refs = {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}

    # (file in refs.tsv, path now, voice, text, keyterms, license)
    candidates: list[tuple[str, Path, str, str, tuple[str, ...], str]] = []
    for name, terms in CORPUS:
        row = corpus_refs[name]
        voice = "corpus:" + ("piper-joe" if row["subset"] == "synth" else row["source_repo"].split("@")[0])
        candidates.append((f"../audio/{name}", audio / name, voice, row["reference_transcript"], terms,
                           row["license_note"]))
    for i, (text, terms) in enumerate(SENTENCES):
        voice = VOICES[i % len(VOICES)]
        name = f"k{i + 1:02d}_{'slt-hts' if voice.startswith('festival') else voice.split(':')[1]}.wav"
        path = work / name
        synthesize(voice, spoken(text), path, work)
        licence = ("festival 2.5 + festvox-us-slt-hts (CMU ARCTIC slt, HTS voice; free, BSD-style)"
                   if voice.startswith("festival") else f"flite 2.2 voice {voice.split(':')[1]} (CMU; free, BSD-style)")
        candidates.append((name, path, voice, text, terms, licence))

    results = asyncio.run(decode_all([c[1] for c in candidates], [c[4] for c in candidates]))

    kept = kept_synth = 0
    with open(out / "candidates.tsv", "w", newline="") as f_all, open(out / "refs.tsv", "w", newline="") as f_kept:
        all_rows = csv.writer(f_all, delimiter="\t", lineterminator="\n")
        kept_rows = csv.writer(f_kept, delimiter="\t", lineterminator="\n")
        all_rows.writerow(["file", "voice", "text", "keyterms", "found_without", "found_with", "kept",
                           "finals_without", "finals_with"])
        kept_rows.writerow(["file", "voice", "text", "keyterms", "license"])
        for (file, path, voice, text, terms, licence), (without, with_) in zip(candidates, results, strict=True):
            n0, n1 = recall_counts(without, terms), recall_counts(with_, terms)
            missed = n0 < len(terms)
            synthesized = not file.startswith("..")
            keep = missed and (not synthesized or kept_synth < args.keep)
            kept_synth += keep and synthesized
            verdict = "kept" if keep else "over the cap" if missed else "all found"
            all_rows.writerow([file, voice, text, "|".join(terms), n0, n1, verdict, " / ".join(without),
                               " / ".join(with_)])
            if keep:
                kept += 1
                kept_rows.writerow([file, voice, text, "|".join(terms), licence])
                if not file.startswith(".."):
                    shutil.copyfile(path, out / file)
    print(f"{len(candidates)} candidates, {kept} kept; candidate WAVs in {work}")


if __name__ == "__main__":
    main()
