"""What the doc-replay tests share: the grpcurl lines of a Markdown guide's ```sh blocks."""


def extract_lines(doc):
    """Every line of a ```sh block that starts with grpcurl, in order."""
    lines, in_sh = [], False
    for raw in open(doc, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh and line.startswith("grpcurl"):
            lines.append(line)
    return lines


def extract_sh_lines(doc):
    """Every non-empty line of every ```sh block, in order (for guides replayed whole)."""
    lines, in_sh = [], False
    for raw in open(doc, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh and line.strip():
            lines.append(line)
    return lines
