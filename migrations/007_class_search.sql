-- Common Grounds schema, version 7: free-text class search also finds a class by its instructor
-- and by its SIS class number. The trigram index covers the longer expression
-- (persistence.ClassSearchExpr must stay identical to it, or the planner cannot use the index).
DROP INDEX classes_search_trgm;
CREATE INDEX classes_search_trgm ON classes
    USING gin ((subject || ' ' || catalog_number || ' ' || coalesce(title, '') || ' ' ||
        coalesce(instructor, '') || ' ' || coalesce(sis_class_number, '')) gin_trgm_ops);
