// The Markdown of card details, rendered as DOM nodes built with textContent: no HTML in a card ever
// becomes markup, so nothing needs sanitising after the fact. Supported (what CDS cards use): paragraphs,
// "- " lists (nested by two spaces), **bold**, *emphasis*, [links](https://...) and backslash escapes.
// A link whose URL is not http(s) is shown as text.

const INLINE = /\\([\\`*_{}\[\]()#+\-.!|~>])|\*\*(.+?)\*\*|\*(.+?)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

function appendInline(parent, text) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    const [whole, escaped, bold, emphasis, label, url] = match;
    if (escaped !== undefined) {
      parent.append(escaped);
    } else if (bold !== undefined) {
      const strong = document.createElement("strong");
      appendInline(strong, bold);
      parent.append(strong);
    } else if (emphasis !== undefined) {
      const em = document.createElement("em");
      appendInline(em, emphasis);
      parent.append(em);
    } else if (/^https?:\/\//i.test(url)) {
      const anchor = document.createElement("a");
      anchor.href = url;
      anchor.target = "_blank";
      anchor.rel = "noopener noreferrer";
      appendInline(anchor, label);
      parent.append(anchor);
    } else {
      parent.append(whole);
    }
    last = match.index + whole.length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

function appendList(parent, lines) {
  // lines: [{depth, text}] -> nested <ul>
  const root = document.createElement("ul");
  const stack = [{ depth: lines[0].depth, list: root }];
  for (const { depth, text } of lines) {
    while (depth < stack[stack.length - 1].depth && stack.length > 1) stack.pop();
    let top = stack[stack.length - 1];
    if (depth > top.depth && top.list.lastElementChild) {
      const nested = document.createElement("ul");
      top.list.lastElementChild.append(nested);
      stack.push({ depth, list: nested });
      top = stack[stack.length - 1];
    }
    const item = document.createElement("li");
    appendInline(item, text);
    top.list.append(item);
  }
  parent.append(root);
}

export function renderMarkdown(markdown) {
  const fragment = document.createDocumentFragment();
  for (const block of String(markdown).split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((line) => line.trim() !== "");
    if (lines.length === 0) continue;
    const items = lines.map((line) => /^(\s*)[-*] (.*)$/.exec(line));
    if (items.every(Boolean)) {
      appendList(fragment, items.map((m) => ({ depth: m[1].length, text: m[2] })));
      continue;
    }
    // A paragraph, possibly followed by a list (a heading line then its items).
    const firstItem = items.findIndex(Boolean);
    const paragraphLines = firstItem === -1 ? lines : lines.slice(0, firstItem);
    const paragraph = document.createElement("p");
    appendInline(paragraph, paragraphLines.join(" "));
    fragment.append(paragraph);
    if (firstItem !== -1) {
      const rest = items.slice(firstItem);
      if (rest.every(Boolean)) {
        appendList(fragment, rest.map((m) => ({ depth: m[1].length, text: m[2] })));
      } else {
        const tail = document.createElement("p");
        appendInline(tail, lines.slice(firstItem).join(" "));
        fragment.append(tail);
      }
    }
  }
  return fragment;
}
