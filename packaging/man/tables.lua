-- tables.lua - pandoc filter for the man pages: a table becomes a
-- definition list (first cell the term, the other cells "header: value"),
-- since tbl tables wider than a terminal read badly and groff warns.
local function cell_inlines(cell)
  local out = pandoc.List()
  for _, b in ipairs(cell.contents) do
    if b.content then out:extend(b.content) end
  end
  return out
end

function Table(tbl)
  local heads = {}
  local hrows = tbl.head.rows
  if #hrows > 0 then
    for i, c in ipairs(hrows[1].cells) do heads[i] = cell_inlines(c) end
  end
  local items = pandoc.List()
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do
      local term = cell_inlines(row.cells[1])
      local defs = pandoc.List()
      for i = 2, #row.cells do
        local inl = pandoc.List()
        if heads[i] and #heads[i] > 0 then
          inl:extend(heads[i])
          inl:insert(pandoc.Str(":"))
          inl:insert(pandoc.Space())
        end
        inl:extend(cell_inlines(row.cells[i]))
        defs:insert({pandoc.Plain(inl)})
      end
      items:insert({term, defs})
    end
  end
  return pandoc.DefinitionList(items)
end
